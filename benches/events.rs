//! Benchmarks event ingestion over HTTP against the local Redis (127.0.0.1:6379), and
//! what events flowing at the same time do to suggest latency.
//!
//! The service runs in this process (`Application` on a free port, 2 HTTP workers, the
//! demo catalog, its own Redis key prefix, removed at the end); the load comes from the
//! same process over loopback, so the figures include the client's share of the 2 cores.
//!
//! 1. Ingestion: `DEFLECT_BENCH_EVENTS` events (default 200,000) in batches of 500 from 4
//!    concurrent clients; every answer checked. Prints events/s.
//! 2. Suggest: open-loop 1,000 req/s for twice `DEFLECT_BENCH_SECONDS` (default 15),
//!    latency measured from each request's scheduled time (no coordinated omission), with
//!    events flowing at 2,000/s (a batch of 100 every 50 ms) in every other one-second
//!    slice; p99 with and without events compared.
//!
//! Run: `cargo bench --bench events` (release build; see benches/BENCHMARKS.md).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deflect::configuration::{load_settings, ApiKeySettings, TenantSettings};
use deflect::startup::Application;
use secrecy::SecretString;
use serde_json::{json, Value};

const TENANT: &str = "bench";
const SUGGEST_KEY: &str = "bench-suggest-key";
const OPS_KEY: &str = "bench-ops-key";
const BATCH_EVENTS: usize = 500;
const INGEST_CLIENTS: usize = 4;
const SUGGEST_RATE_PER_SECOND: u64 = 1_000;
const BACKGROUND_BATCH_EVENTS: usize = 100;
const BACKGROUND_BATCH_INTERVAL: Duration = Duration::from_millis(50);
const TARGET_EVENTS_PER_SECOND: f64 = 20_000.0;
const MAX_P99_DEGRADATION: f64 = 0.20;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("failed to start the runtime");
    runtime.block_on(run());
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn run() {
    let total_events = env_number("DEFLECT_BENCH_EVENTS", 200_000) as usize;
    let seconds = env_number("DEFLECT_BENCH_SECONDS", 15);
    let directory = tempfile::tempdir().expect("failed to create a directory");
    let key_prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());

    let config_directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = load_settings(&config_directory, None).expect("bundled settings");
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.index.path = directory.path().join("index");
    settings.events.key_prefix = key_prefix.clone();
    settings.events.spool_path = directory.path().join("events.spool");
    settings.demo.load_when_empty = true;
    settings.demo.tenant = TENANT.to_owned();
    settings.log.filter = "warn".to_owned();
    settings.tenants.clear();
    let key = |name: &str, key: &str, scope: &str| ApiKeySettings {
        name: name.to_owned(),
        key: SecretString::from(key.to_owned()),
        scopes: vec![scope.to_owned()],
    };
    settings.tenants.insert(
        TENANT.to_owned(),
        TenantSettings {
            allowed_origins: Vec::new(),
            api_keys: vec![
                key("bench widget", SUGGEST_KEY, "suggest"),
                key("bench ops", OPS_KEY, "ops"),
            ],
            cost_per_ticket: Some(25.0),
            ..TenantSettings::default()
        },
    );
    let application = Application::build(settings)
        .await
        .expect("failed to build the application");
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    // Idle connections are dropped before actix's keep-alive (5 s) closes them, so a
    // request never races a server-side close (hyper's IncompleteMessage).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("http client");

    println!("deflect event benchmark: Redis 127.0.0.1:6379, key prefix {key_prefix}");
    println!(
        "cores available: {}",
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    // 1. Ingestion.
    let batches = event_batches(total_events, "ingest");
    let memory_before = redis_used_memory().await;
    let commands_before = redis_command_stats().await;
    let ingestion = ingest(&client, &base, batches).await;
    let commands_after = redis_command_stats().await;
    let memory_after = redis_used_memory().await;
    let events_per_second = total_events as f64 / ingestion.as_secs_f64();
    println!(
        "\ningestion: {total_events} events in batches of {BATCH_EVENTS} from {INGEST_CLIENTS} clients: {:.2} s, {:.0} events/s (target {:.0}: {})",
        ingestion.as_secs_f64(),
        events_per_second,
        TARGET_EVENTS_PER_SECOND,
        if events_per_second >= TARGET_EVENTS_PER_SECOND { "met" } else { "MISSED" }
    );
    println!(
        "redis memory: +{:.1} MiB, {:.0} bytes per event (idempotency marker, stream entry, session state, counters)",
        (memory_after - memory_before) as f64 / (1024.0 * 1024.0),
        (memory_after - memory_before) as f64 / total_events as f64
    );
    print_redis_time_per_event(&commands_before, &commands_after, total_events);
    let summary = stats_summary(&client, &base).await;
    println!(
        "counted: sessions {} shown {} opened {} resolved {} submitted {} deflections {}",
        summary["sessions"],
        summary["shown"],
        summary["opened"],
        summary["resolved"],
        summary["submitted"],
        summary["deflections"]
    );

    // 2. and 3. Suggest latency without and with events flowing.
    let drafts = demo_drafts();
    let warm_up = suggest_open_loop(&client, &base, &drafts, 2, None).await;
    println!(
        "\nwarm-up: {} suggest requests",
        warm_up.without_events.len()
    );
    let flowing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background_events = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // DEFLECT_BENCH_BACKGROUND=0 sends no events in either condition: the spread of the
    // comparison between two identical conditions (the noise floor of the machine).
    let send_events = env_number("DEFLECT_BENCH_BACKGROUND", 1) != 0;
    if !send_events {
        println!("DEFLECT_BENCH_BACKGROUND=0: no events in either condition (noise floor)");
    }
    let background = tokio::spawn(events_in_background(
        send_events,
        client.clone(),
        base.clone(),
        background_events.clone(),
        flowing.clone(),
        stop.clone(),
    ));
    let run = suggest_open_loop(&client, &base, &drafts, 2 * seconds, Some(&flowing)).await;
    stop.store(true, Ordering::Relaxed);
    background.await.expect("the background task failed");
    let background_rate = background_events.load(Ordering::Relaxed) as f64 / seconds as f64;
    let (slice_p99_alone, slice_p99_with_events) = median_slice_p99(&run.slices);
    let (alone, with_events) = (run.without_events, run.with_events);
    let (cpu_alone, cpu_with_events) = (run.cpu_without_events, run.cpu_with_events);

    let report = |name: &str, latencies: &[Duration]| -> f64 {
        let (p50, p99, max) = percentiles(latencies);
        println!(
            "{name}: {} requests at {SUGGEST_RATE_PER_SECOND}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            p50,
            p99,
            max
        );
        p99
    };
    println!();
    let p99_alone = report("suggest alone", &alone);
    let p99_with_events = report(
        &format!("suggest with events at {background_rate:.0}/s"),
        &with_events,
    );
    println!("cpu, suggest alone: {cpu_alone}");
    println!("cpu, with events:   {cpu_with_events}");
    println!("(alternating one-second slices with and without events, {seconds} s of each)");
    let degradation = p99_with_events / p99_alone - 1.0;
    println!(
        "suggest p99 with events: {:+.1}% (limit +{:.0}%: {})",
        degradation * 100.0,
        MAX_P99_DEGRADATION * 100.0,
        if degradation <= MAX_P99_DEGRADATION {
            "met"
        } else {
            "MISSED"
        }
    );
    let slice_degradation = slice_p99_with_events / slice_p99_alone - 1.0;
    println!(
        "median of the one-second slices' p99: {slice_p99_alone:.2} ms alone, {slice_p99_with_events:.2} ms with events: {:+.1}% (limit +{:.0}%: {})",
        slice_degradation * 100.0,
        MAX_P99_DEGRADATION * 100.0,
        if slice_degradation <= MAX_P99_DEGRADATION { "met" } else { "MISSED" }
    );

    remove_keys(&key_prefix).await;
}

/// Batches of sessions of 4 events each (shown, opened, helpful or not helpful, then
/// resolved or submitted), serialized up front so the clock measures the service.
fn event_batches(total_events: usize, label: &str) -> Vec<Vec<u8>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut batches = Vec::new();
    let mut events = Vec::with_capacity(BATCH_EVENTS);
    for number in 0..total_events.div_ceil(4) {
        let session = format!("{label}-{run}-{number}");
        let lesson = format!("lesson-{}", number % 200);
        let other = format!("lesson-{}", (number + 7) % 200);
        let id = |kind: &str| format!("{session}-{kind}");
        events.push(json!({"event_id": id("s"), "type": "suggestions_shown", "session_id": session, "lesson_ids": [lesson, other]}));
        events.push(json!({"event_id": id("o"), "type": "lesson_opened", "session_id": session, "lesson_id": lesson}));
        if number % 3 == 0 {
            events.push(json!({"event_id": id("n"), "type": "not_helpful", "session_id": session, "lesson_id": lesson, "reason": "did not match my question"}));
            events.push(
                json!({"event_id": id("t"), "type": "ticket_submitted", "session_id": session}),
            );
        } else {
            events.push(json!({"event_id": id("h"), "type": "helpful", "session_id": session, "lesson_id": lesson}));
            events.push(json!({"event_id": id("r"), "type": "resolved", "session_id": session}));
        }
        if events.len() >= BATCH_EVENTS {
            batches.push(serde_json::to_vec(&json!({ "events": events })).expect("json"));
            events.clear();
        }
    }
    if !events.is_empty() {
        batches.push(serde_json::to_vec(&json!({ "events": events })).expect("json"));
    }
    batches
}

async fn post_batch(client: &reqwest::Client, base: &str, body: Vec<u8>) -> usize {
    let response = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(SUGGEST_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("events request failed");
    let status = response.status();
    let answer: Value = response.json().await.expect("events answer");
    assert!(status.is_success(), "events answered {status}: {answer}");
    answer["accepted"].as_u64().unwrap_or(0) as usize
}

async fn ingest(client: &reqwest::Client, base: &str, batches: Vec<Vec<u8>>) -> Duration {
    let expected: usize = batches.len();
    let queue = Arc::new(Mutex::new(batches));
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..INGEST_CLIENTS {
        let queue = queue.clone();
        let accepted = accepted.clone();
        let client = client.clone();
        let base = base.to_owned();
        clients.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else {
                    return;
                };
                let count = post_batch(&client, &base, body).await;
                accepted.fetch_add(count, Ordering::Relaxed);
            }
        }));
    }
    for handle in clients {
        handle.await.expect("an ingest client failed");
    }
    let elapsed = started.elapsed();
    assert!(expected > 0);
    println!(
        "accepted {} events (every one new)",
        accepted.load(Ordering::Relaxed)
    );
    elapsed
}

async fn events_in_background(
    send_events: bool,
    client: reqwest::Client,
    base: String,
    sent: Arc<AtomicUsize>,
    flowing: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut interval = tokio::time::interval(BACKGROUND_BATCH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        interval.tick().await;
        if !send_events || !flowing.load(Ordering::Relaxed) {
            continue;
        }
        round += 1;
        let body = event_batches(BACKGROUND_BATCH_EVENTS, &format!("background-{round}"))
            .pop()
            .expect("one batch");
        let client = client.clone();
        let base = base.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let count = post_batch(&client, &base, body).await;
            sent.fetch_add(count, Ordering::Relaxed);
        });
    }
}

fn demo_drafts() -> Vec<Value> {
    include_str!("../tests/fixtures/demo_queries.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<Value>(line).expect("a demo query"))
        .map(|query| json!({"text": query["text"], "locale": query["locale"]}))
        .collect()
}

/// Latencies (and CPU use) of an open-loop suggest run, by whether events flowed.
struct SuggestRun {
    without_events: Vec<Duration>,
    with_events: Vec<Duration>,
    /// Latencies by one-second slice (even slices without events, odd ones with).
    slices: Vec<Vec<Duration>>,
    cpu_without_events: CpuUse,
    cpu_with_events: CpuUse,
}

/// Sends suggest requests at a fixed rate for `seconds`, each on its own task; returns
/// each one's latency from its scheduled start. With `flowing`, events are switched on
/// for every other one-second slice, so both conditions see the same machine (other
/// processes' load drifts over a run; alternating cancels that out).
async fn suggest_open_loop(
    client: &reqwest::Client,
    base: &str,
    drafts: &[Value],
    seconds: u64,
    flowing: Option<&Arc<std::sync::atomic::AtomicBool>>,
) -> SuggestRun {
    let total = SUGGEST_RATE_PER_SECOND * seconds;
    let interval = Duration::from_secs(1) / SUGGEST_RATE_PER_SECOND as u32;
    let latencies: Arc<Mutex<Vec<Vec<Duration>>>> =
        Arc::new(Mutex::new(vec![Vec::new(); seconds as usize]));
    let started = tokio::time::Instant::now();
    // Switches events on and off and samples CPU at each slice boundary, off the
    // request schedule (a sample costs a Redis round trip).
    let controller = {
        let flowing = flowing.cloned();
        tokio::spawn(async move {
            let mut probe = CpuProbe::connect().await;
            let mut cpu = [CpuUse::default(), CpuUse::default()];
            let mut slice_start = probe.sample().await;
            for slice in 0..seconds {
                let events_on = flowing.is_some() && slice % 2 == 1;
                if let Some(flowing) = &flowing {
                    flowing.store(events_on, Ordering::Relaxed);
                }
                tokio::time::sleep_until(started + Duration::from_secs(slice + 1)).await;
                let now = probe.sample().await;
                cpu[usize::from(events_on)].add(&now.since(&slice_start));
                slice_start = now;
            }
            if let Some(flowing) = &flowing {
                flowing.store(false, Ordering::Relaxed);
            }
            cpu
        })
    };
    let mut tasks = Vec::with_capacity(total as usize);
    for number in 0..total {
        let scheduled = started + interval * number as u32;
        tokio::time::sleep_until(scheduled).await;
        let slice = number / SUGGEST_RATE_PER_SECOND;
        let mut body = drafts[number as usize % drafts.len()].clone();
        body["session_id"] = json!(format!("typing-{}", number / 5));
        let client = client.clone();
        let url = format!("{base}/v1/suggest");
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(SUGGEST_KEY)
                .json(&body)
                .send()
                .await
                .expect("suggest request failed");
            assert!(response.status().is_success());
            let _ = response.bytes().await;
            let latency = scheduled.elapsed();
            latencies.lock().expect("latencies")[slice as usize].push(latency);
        }));
    }
    for task in tasks {
        task.await.expect("a suggest request failed");
    }
    let slices = Arc::try_unwrap(latencies)
        .expect("all tasks done")
        .into_inner()
        .expect("latencies");
    let mut without_events = Vec::new();
    let mut with_events = Vec::new();
    for (slice, slice_latencies) in slices.iter().enumerate() {
        if flowing.is_some() && slice % 2 == 1 {
            with_events.extend_from_slice(slice_latencies);
        } else {
            without_events.extend_from_slice(slice_latencies);
        }
    }
    let [cpu_without_events, cpu_with_events] = controller.await.expect("the controller failed");
    SuggestRun {
        without_events,
        with_events,
        slices,
        cpu_without_events: cpu_without_events.averaged(),
        cpu_with_events: cpu_with_events.averaged(),
    }
}

/// CPU seconds used so far by this process (service and load) and by Redis, and when.
struct CpuSample {
    process_seconds: f64,
    redis_seconds: f64,
    at: Instant,
}

/// Takes [`CpuSample`]s over one Redis connection.
struct CpuProbe {
    connection: Option<redis::aio::MultiplexedConnection>,
}

impl CpuProbe {
    async fn connect() -> CpuProbe {
        let connection = match redis::Client::open("redis://127.0.0.1:6379") {
            Ok(client) => client.get_multiplexed_async_connection().await.ok(),
            Err(_) => None,
        };
        CpuProbe { connection }
    }

    async fn sample(&mut self) -> CpuSample {
        let redis_seconds = match self.connection.as_mut() {
            Some(connection) => redis_cpu_seconds(connection).await,
            None => 0.0,
        };
        CpuSample {
            process_seconds: process_cpu_seconds(),
            redis_seconds,
            at: Instant::now(),
        }
    }
}

impl CpuSample {
    /// The cores used between `earlier` and this sample.
    fn since(&self, earlier: &CpuSample) -> CpuUse {
        let wall = (self.at - earlier.at).as_secs_f64();
        CpuUse {
            process_cores: (self.process_seconds - earlier.process_seconds) / wall,
            redis_cores: (self.redis_seconds - earlier.redis_seconds) / wall,
            slices: 1,
        }
    }
}

#[derive(Default)]
struct CpuUse {
    process_cores: f64,
    redis_cores: f64,
    /// How many slices were added up (see [`CpuUse::averaged`]).
    slices: u32,
}

impl CpuUse {
    fn add(&mut self, slice: &CpuUse) {
        self.process_cores += slice.process_cores;
        self.redis_cores += slice.redis_cores;
        self.slices += 1;
    }

    fn averaged(self) -> CpuUse {
        let slices = f64::from(self.slices.max(1));
        CpuUse {
            process_cores: self.process_cores / slices,
            redis_cores: self.redis_cores / slices,
            slices: 1,
        }
    }
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "deflect + load generator {:.2} cores, redis-server {:.2} cores",
            self.process_cores, self.redis_cores
        )
    }
}

/// utime + stime of this process from /proc (clock ticks of 1/100 s on Linux).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// used_memory of the Redis server, in bytes.
async fn redis_used_memory() -> i64 {
    let Ok(client) = redis::Client::open("redis://127.0.0.1:6379") else {
        return 0;
    };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return 0;
    };
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == "used_memory")
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Calls and microseconds per command from `INFO commandstats` (commands a script runs
/// are counted too, and within the script's own time).
async fn redis_command_stats() -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut stats = std::collections::BTreeMap::new();
    let Ok(client) = redis::Client::open("redis://127.0.0.1:6379") else {
        return stats;
    };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return stats;
    };
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap_or_default();
    // cmdstat_hincrby:calls=10,usec=20,usec_per_call=2.00,...
    for line in info.lines() {
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        let Some(command) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        let field = |wanted: &str| {
            fields
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == wanted)
                .and_then(|(_, value)| value.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        stats.insert(command.to_owned(), (field("calls"), field("usec")));
    }
    stats
}

/// Prints where Redis spent its time during ingestion, per event: the script calls in
/// all, and the commands they ran (the rest of a script's time is Lua itself).
fn print_redis_time_per_event(
    before: &std::collections::BTreeMap<String, (f64, f64)>,
    after: &std::collections::BTreeMap<String, (f64, f64)>,
    events: usize,
) {
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for (command, (calls, usec)) in after {
        let (calls_before, usec_before) = before.get(command).copied().unwrap_or((0.0, 0.0));
        let calls = calls - calls_before;
        if calls > 0.0 {
            rows.push((command.clone(), calls, usec - usec_before));
        }
    }
    rows.sort_by(|left, right| right.2.total_cmp(&left.2));
    let per_event = |value: f64| value / events as f64;
    println!("redis time per event, by command (INFO commandstats; other clients included):");
    let script_usec: f64 = rows
        .iter()
        .filter(|(command, _, _)| command == "evalsha" || command == "eval")
        .map(|row| row.2)
        .sum();
    let inner_usec: f64 = rows
        .iter()
        .filter(|(command, _, _)| command != "evalsha" && command != "eval")
        .map(|row| row.2)
        .sum();
    println!(
        "  scripts {:.1} us per event; commands inside {:.1} us; Lua and the rest {:.1} us",
        per_event(script_usec),
        per_event(inner_usec),
        per_event(script_usec - inner_usec)
    );
    for (command, calls, usec) in rows.iter().take(14) {
        println!(
            "  {command:<12} {:>6.2} calls {:>6.2} us per event ({:.2} us per call)",
            per_event(*calls),
            per_event(*usec),
            usec / calls
        );
    }
}

/// used_cpu_user + used_cpu_sys of the Redis server.
async fn redis_cpu_seconds(connection: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(connection)
        .await
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| *name == "used_cpu_user" || *name == "used_cpu_sys")
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

/// The median over slices of each slice's p99, without and with events, in ms: a stall
/// caused by another process spoils one slice, not the comparison.
fn median_slice_p99(slices: &[Vec<Duration>]) -> (f64, f64) {
    let mut by_condition: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (slice, latencies) in slices.iter().enumerate() {
        if !latencies.is_empty() {
            by_condition[slice % 2].push(percentiles(latencies).1);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let [mut alone, mut with_events] = by_condition;
    (median(&mut alone), median(&mut with_events))
}

/// p50, p99 and max in milliseconds.
fn percentiles(latencies: &[Duration]) -> (f64, f64, f64) {
    let mut sorted: Vec<f64> = latencies
        .iter()
        .map(|latency| latency.as_secs_f64() * 1000.0)
        .collect();
    sorted.sort_by(f64::total_cmp);
    let at = |share: f64| sorted[((sorted.len() as f64 * share) as usize).min(sorted.len() - 1)];
    (at(0.50), at(0.99), sorted[sorted.len() - 1])
}

async fn stats_summary(client: &reqwest::Client, base: &str) -> Value {
    let answer: Value = client
        .get(format!("{base}/v1/stats/summary"))
        .bearer_auth(OPS_KEY)
        .send()
        .await
        .expect("stats request failed")
        .json()
        .await
        .expect("stats answer");
    answer["total"].clone()
}

/// Deletes the benchmark's keys from the shared Redis.
async fn remove_keys(key_prefix: &str) {
    let connected = match redis::Client::open("redis://127.0.0.1:6379") {
        Ok(client) => client.get_multiplexed_async_connection().await,
        Err(error) => Err(error),
    };
    let mut connection = match connected {
        Ok(connection) => connection,
        Err(error) => {
            eprintln!(
                "could not reach Redis to remove the benchmark's keys ({key_prefix}*): {error}"
            );
            return;
        }
    };
    let mut cursor: u64 = 0;
    let mut removed = 0usize;
    loop {
        let scanned: Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{key_prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await;
        let (next, keys) = match scanned {
            Ok(page) => page,
            Err(error) => {
                // Say so: a silent failure leaves hundreds of thousands of keys behind.
                eprintln!(
                    "could not list the benchmark's keys ({error}); remove them with: \
                     redis-cli --scan --pattern '{key_prefix}*' | xargs -n 1000 redis-cli unlink"
                );
                return;
            }
        };
        if !keys.is_empty() {
            removed += keys.len();
            let deleted: Result<(), _> = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut connection)
                .await;
            if let Err(error) = deleted {
                eprintln!("could not remove {} benchmark keys: {error}", keys.len());
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    println!("\nremoved {removed} benchmark keys from Redis");
}
