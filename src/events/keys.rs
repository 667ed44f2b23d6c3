//! Every Redis key name deflect uses, built in this one place.
//!
//! All keys of one tenant start with `<prefix>{t:<tenant>}:`, so they share one hash tag
//! and land in one slot of a Redis Cluster: a Lua script may touch any of them, and a
//! tenant's batch is one atomic script call. The prefix (`events.key_prefix`) separates
//! deployments and tests that share a Redis.
//!
//! Layout under a tenant's base:
//!
//! | key | type | what |
//! |---|---|---|
//! | `events` | stream | raw events, `XADD MAXLEN ~ events.stream_max_len` |
//! | `seen:<event_id>` | string, TTL | idempotency marker (`events.idempotency_ttl_seconds`) |
//! | `session:<session_id>` | hash, TTL | attribution state of one session (`events.session_ttl_seconds`) |
//! | `day:<date>` | hash | the tenant's counters of one UTC day |
//! | `day:<date>:lessons:<metric>` | hash | per-lesson counters of one day, field = lesson id |
//! | `day:<date>:gaps:<kind>` | sorted set | redacted drafts without suggestions or submitted anyway |
//! | `delivery:<provider>:<digest>` | string, TTL | a processed webhook delivery (`webhooks.delivery_ttl_seconds`) |
//! | `training:…` | | assignments, LMS progress, tickets per customer and active customers ([`training`]) |
//! | `sync:<source>:…` | | content sync cursors and locks ([`sync`]) |
//!
//! The outbox of helpdesk API calls is shared by all tenants and has a hash tag of its
//! own, `<prefix>{outbox}:`, so its scripts touch one slot:
//!
//! | key | type | what |
//! |---|---|---|
//! | `due` | sorted set | job ids by the time (ms) they are due or their lease ends |
//! | `job:<job id>` | hash, TTL | the job (`job`), its `attempts`, `state` and `last_error` (`webhooks.outbox.job_ttl_seconds`) |
//!
//! The content log every instance's index follows (`src/content_log/`) has the hash tag
//! `<prefix>{content}:`, so one script appends a change to the snapshot and the stream:
//!
//! | key | type | what |
//! |---|---|---|
//! | `changes` | stream | content change batches, `XADD MAXLEN ~ content_log.stream_max_len` |
//! | `tenants` | set | tenants that have content in the snapshot |
//! | `docs:<tenant>` | hash | the snapshot: document id -> document JSON |
//! | `life` | hash | `born` (the first entry of the log's life, or its seed marker), `seeded` (the seed marker, once an instance seeded it) and `last` (the last entry appended) |
//! | `seeding` | string, TTL | the lock of the instance seeding the log from its index; appends wait while it exists |

mod sync;
mod training;

use sha2::Digest;
use time::Date;

use crate::domain::TenantId;

pub use sync::SyncKeys;
pub use training::TrainingKeys;

/// The per-lesson counters kept per day, in the order [`DayKeys::lessons`] holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonMetric {
    /// Sessions the lesson was shown in (once per session).
    Shown,
    Opened,
    Helpful,
    NotHelpful,
    /// Explicit deflections credited to the lesson (net of reverted ones).
    Deflections,
    /// Credited deflections taken back because the session submitted a ticket after all.
    DeflectionsReverted,
    /// Sessions that engaged with the lesson and submitted a ticket anyway.
    SubmittedAfterViewing,
    /// Tickets resolved by the customer from the lessons posted into them ("while you
    /// wait"), credited to the lesson opened last.
    PostSubmissionDeflections,
    /// Of `Shown`: sessions whose first answer showing the lesson showed it first ...
    ShownFirst,
    /// ... or second (the rest showed it third or lower). Ranking feedback compares a
    /// lesson's deflections with what lessons shown at the same positions deflect.
    ShownSecond,
    /// Of `Deflections`: those of sessions that had been shown the lesson first ...
    DeflectionsShownFirst,
    /// ... or second.
    DeflectionsShownSecond,
}

impl LessonMetric {
    pub const ALL: [LessonMetric; 12] = [
        LessonMetric::Shown,
        LessonMetric::Opened,
        LessonMetric::Helpful,
        LessonMetric::NotHelpful,
        LessonMetric::Deflections,
        LessonMetric::DeflectionsReverted,
        LessonMetric::SubmittedAfterViewing,
        LessonMetric::PostSubmissionDeflections,
        LessonMetric::ShownFirst,
        LessonMetric::ShownSecond,
        LessonMetric::DeflectionsShownFirst,
        LessonMetric::DeflectionsShownSecond,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LessonMetric::Shown => "shown",
            LessonMetric::Opened => "opened",
            LessonMetric::Helpful => "helpful",
            LessonMetric::NotHelpful => "not_helpful",
            LessonMetric::Deflections => "deflections",
            LessonMetric::DeflectionsReverted => "deflections_reverted",
            LessonMetric::SubmittedAfterViewing => "submitted_after_viewing",
            LessonMetric::PostSubmissionDeflections => "post_submission_deflections",
            LessonMetric::ShownFirst => "shown_first",
            LessonMetric::ShownSecond => "shown_second",
            LessonMetric::DeflectionsShownFirst => "deflections_shown_first",
            LessonMetric::DeflectionsShownSecond => "deflections_shown_second",
        }
    }
}

/// The two kinds of content gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// Drafts whose (latest) answer had no suggestion.
    Unanswered,
    /// Drafts that got suggestions and were submitted anyway.
    SubmittedAnyway,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Unanswered => "unanswered",
            GapKind::SubmittedAnyway => "submitted_anyway",
        }
    }
}

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// `prefix` may not contain `{` or `}`: the first braces of a key name are its hash
    /// tag, and they must be the tenant's.
    pub fn new(prefix: &str) -> Result<KeySpace, String> {
        if prefix.contains(['{', '}']) || prefix.contains(char::is_whitespace) {
            return Err(format!(
                "events.key_prefix `{prefix}` may not contain braces or whitespace"
            ));
        }
        Ok(KeySpace {
            prefix: prefix.to_owned(),
        })
    }

    /// The keys of the outbox of helpdesk API calls.
    pub fn outbox(&self) -> OutboxKeys {
        OutboxKeys {
            base: format!("{}{{outbox}}:", self.prefix),
        }
    }

    /// The keys of the content log.
    pub fn content_log(&self) -> ContentLogKeys {
        ContentLogKeys {
            base: format!("{}{{content}}:", self.prefix),
        }
    }

    /// The keys of one tenant.
    pub fn tenant(&self, tenant: &TenantId) -> TenantKeys {
        TenantKeys {
            base: format!("{}{{t:{}}}:", self.prefix, tenant.as_str()),
        }
    }
}

/// Key names of one tenant; all share the tenant's hash tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKeys {
    base: String,
}

impl TenantKeys {
    pub fn stream(&self) -> String {
        format!("{}events", self.base)
    }

    pub fn seen(&self, event_id: &str) -> String {
        format!("{}seen:{event_id}", self.base)
    }

    pub fn session(&self, session_id: &str) -> String {
        format!("{}session:{session_id}", self.base)
    }

    /// The marker of a processed webhook delivery; `delivery_key` is any text that
    /// identifies the delivery (it is hashed, so senders' ids cannot shape key names).
    pub fn webhook_delivery(&self, provider: &str, delivery_key: &str) -> String {
        let digest = sha2::Sha256::digest(delivery_key.as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{}delivery:{provider}:{hex}", self.base)
    }

    pub fn day(&self, date: Date) -> DayKeys {
        let day = format!("{}day:{}", self.base, format_date(date));
        DayKeys {
            lessons: LessonMetric::ALL.map(|metric| format!("{day}:lessons:{}", metric.as_str())),
            gaps_unanswered: format!("{day}:gaps:{}", GapKind::Unanswered.as_str()),
            gaps_submitted_anyway: format!("{day}:gaps:{}", GapKind::SubmittedAnyway.as_str()),
            counters: day,
        }
    }
}

/// Key names of the outbox; all share the `{outbox}` hash tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxKeys {
    base: String,
}

impl OutboxKeys {
    pub fn due(&self) -> String {
        format!("{}due", self.base)
    }

    pub fn job(&self, job_id: &str) -> String {
        format!("{}job:{job_id}", self.base)
    }
}

/// Key names of the content log; all share the `{content}` hash tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLogKeys {
    base: String,
}

impl ContentLogKeys {
    pub fn changes(&self) -> String {
        format!("{}changes", self.base)
    }

    pub fn tenants(&self) -> String {
        format!("{}tenants", self.base)
    }

    pub fn documents(&self, tenant: &TenantId) -> String {
        format!("{}docs:{}", self.base, tenant.as_str())
    }

    /// The hash that tells which life of the log this is (`born`, `seeded`, `last`).
    pub fn life(&self) -> String {
        format!("{}life", self.base)
    }

    /// The lock of an instance seeding the log from its index.
    pub fn seed_lock(&self) -> String {
        format!("{}seeding", self.base)
    }
}

/// The keys of one tenant's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayKeys {
    /// Hash of the tenant's counters (README, "Events": the field names).
    pub counters: String,
    /// Per-lesson hashes, in the order of [`LessonMetric::ALL`].
    pub lessons: [String; LessonMetric::ALL.len()],
    pub gaps_unanswered: String,
    pub gaps_submitted_anyway: String,
}

impl DayKeys {
    pub fn lesson_metric(&self, metric: LessonMetric) -> &str {
        let position = LessonMetric::ALL
            .iter()
            .position(|candidate| *candidate == metric)
            .expect("every metric is in ALL");
        &self.lessons[position]
    }

    pub fn gaps(&self, kind: GapKind) -> &str {
        match kind {
            GapKind::Unanswered => &self.gaps_unanswered,
            GapKind::SubmittedAnyway => &self.gaps_submitted_anyway,
        }
    }

    /// All keys of the day in the order the attribution script expects them.
    pub fn in_script_order(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.counters.as_str())
            .chain(self.lessons.iter().map(String::as_str))
            .chain([
                self.gaps_unanswered.as_str(),
                self.gaps_submitted_anyway.as_str(),
            ])
    }
}

/// How many keys one day contributes to a script call.
pub const KEYS_PER_DAY: usize = 3 + LessonMetric::ALL.len();

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let all_digits = |part: &str, length: usize| {
        part.len() == length && part.bytes().all(|byte| byte.is_ascii_digit())
    };
    if !all_digits(year, 4) || !all_digits(month, 2) || !all_digits(day, 2) {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Month;

    fn march_4th() -> Date {
        Date::from_calendar_date(2026, Month::March, 4).unwrap()
    }

    fn acme() -> TenantKeys {
        KeySpace::new("deflect:")
            .unwrap()
            .tenant(&TenantId::parse("acme").unwrap())
    }

    #[test]
    fn every_key_of_a_tenant_carries_the_tenant_hash_tag_first() {
        let keys = acme();
        let day = keys.day(march_4th());
        let mut all = vec![
            keys.stream(),
            keys.seen("e{1}"),
            keys.session("s-1"),
            keys.webhook_delivery("zendesk", "inv-{1}"),
        ];
        all.extend(day.in_script_order().map(str::to_owned));
        for key in all {
            let tag_start = key.find('{').unwrap();
            let tag_end = tag_start + key[tag_start..].find('}').unwrap();
            assert_eq!(&key[tag_start + 1..tag_end], "t:acme", "{key}");
        }
    }

    #[test]
    fn day_keys_are_named_by_date_and_listed_in_script_order() {
        let day = acme().day(march_4th());
        assert_eq!(day.counters, "deflect:{t:acme}:day:2026-03-04");
        assert_eq!(
            day.lesson_metric(LessonMetric::Deflections),
            "deflect:{t:acme}:day:2026-03-04:lessons:deflections"
        );
        assert_eq!(day.in_script_order().count(), KEYS_PER_DAY);
    }

    #[test]
    fn dates_parse_back_from_their_format() {
        assert_eq!(parse_date(&format_date(march_4th())), Some(march_4th()));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-3-04"), None);
    }

    #[test]
    fn delivery_markers_hash_the_senders_id_and_the_outbox_has_its_own_tag() {
        let marker = acme().webhook_delivery("zendesk", "a:b c\n");
        assert!(
            marker.starts_with("deflect:{t:acme}:delivery:zendesk:"),
            "{marker}"
        );
        assert_eq!(
            marker.len(),
            "deflect:{t:acme}:delivery:zendesk:".len() + 64
        );
        let outbox = KeySpace::new("deflect:").unwrap().outbox();
        assert_eq!(outbox.due(), "deflect:{outbox}:due");
        assert_eq!(
            outbox.job("acme:zendesk:1:lessons"),
            "deflect:{outbox}:job:acme:zendesk:1:lessons"
        );
    }

    #[test]
    fn content_log_keys_share_the_content_hash_tag() {
        let keys = KeySpace::new("deflect:").unwrap().content_log();
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(keys.changes(), "deflect:{content}:changes");
        assert_eq!(keys.tenants(), "deflect:{content}:tenants");
        assert_eq!(keys.documents(&acme), "deflect:{content}:docs:acme");
        assert_eq!(keys.life(), "deflect:{content}:life");
        assert_eq!(keys.seed_lock(), "deflect:{content}:seeding");
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(KeySpace::new("x{y}:").is_err());
        assert!(KeySpace::new("").is_ok());
    }
}
