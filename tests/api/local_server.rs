//! Starts a local HTTP server for a fake third-party API (the helpdesks deflect writes
//! to, the knowledge bases and catalogs it reads): one worker on a free loopback port,
//! every request answered by one handler with the fake's shared state.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// A running local server; it stops when dropped.
pub struct LocalServer {
    pub base_url: String,
    handle: ServerHandle,
}

impl LocalServer {
    /// Serves every request with `answer(request, body, state)`.
    pub fn start<S, F, Fut>(state: Arc<S>, answer: F) -> LocalServer
    where
        S: Send + Sync + 'static,
        F: Fn(HttpRequest, web::Bytes, web::Data<S>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = HttpResponse> + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("no free port");
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::from(state);
        let server = HttpServer::new(move || {
            let answer = answer.clone();
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(
                    move |request: HttpRequest, body: web::Bytes, state: web::Data<S>| {
                        answer(request, body, state)
                    },
                ))
        })
        .workers(1)
        .listen(listener)
        .expect("failed to listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        LocalServer {
            base_url: format!("http://127.0.0.1:{port}"),
            handle,
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}
