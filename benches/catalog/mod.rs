//! The benchmark catalog: 100,000 generated support documents and the drafts searched
//! against them, the same as `benches/load/generate_catalog.py` writes for the load test.
//!
//! Both implementations follow the steps described at the top of the Python script with
//! integer arithmetic only, so they produce the same documents byte for byte; set
//! `DEFLECT_BENCH_DUMP_CATALOG` when running `benches/search.rs` to compare.

use std::collections::HashSet;

use serde_json::{Map, Value};

const CATALOG_SEED: u64 = 0x00DE_F1EC_7C47_A106;
const DRAFT_SEED: u64 = 0x00D2_AF75_5EED_0001;
const LOAD_MIX_SEED: u64 = 0x0010_AD00_0000_0042;

const MULTIPLIER: u64 = 6_364_136_223_846_793_005;
const INCREMENT: u64 = 1_442_695_040_888_963_407;

const ZIPF_TABLE_BITS: u32 = 20;
const TOPIC_TABLE_BITS: u32 = 16;
const TITLE_FUNCTION_WORDS: usize = 40;
const KEPT_TITLE_EVERY: usize = 50;
const COURSES: u32 = 12_500;

/// Share (out of 4096) of summary and body words taken from the document's topic words.
const SUMMARY_TOPIC_SHARE: u32 = 1229;
const BODY_TOPIC_SHARE: u32 = 492;
/// Share (out of 4096) of a long draft's words taken from the title it was cut from.
const LONG_DRAFT_TITLE_SHARE: u32 = 410;

const FUNCTION_WORDS: &str = include_str!("function_words.txt");
const SUPPORT_WORDS: &str = include_str!("support_words.txt");

/// The ranked words and the tables that sample them.
pub struct Vocabulary {
    function_words: Vec<&'static str>,
    support_words: HashSet<&'static str>,
    /// 2^20 slots over all words, Zipf-like: weight 10^9 / (rank + 3).
    zipf: Vec<&'static str>,
    /// 2^16 slots over support words: weight 10^9 / (rank + 10).
    topic: Vec<&'static str>,
}

impl Vocabulary {
    pub fn bundled() -> Vocabulary {
        let function_words = word_list(FUNCTION_WORDS);
        let support_words = word_list(SUPPORT_WORDS);
        let all_words: Vec<&'static str> = function_words
            .iter()
            .chain(support_words.iter())
            .copied()
            .collect();
        let zipf_weights: Vec<u64> = (0..all_words.len() as u64)
            .map(|rank| 1_000_000_000 / (rank + 3))
            .collect();
        let topic_weights: Vec<u64> = (0..support_words.len() as u64)
            .map(|rank| 1_000_000_000 / (rank + 10))
            .collect();
        Vocabulary {
            zipf: sampling_table(&zipf_weights, ZIPF_TABLE_BITS)
                .into_iter()
                .map(|rank| all_words[rank])
                .collect(),
            topic: sampling_table(&topic_weights, TOPIC_TABLE_BITS)
                .into_iter()
                .map(|rank| support_words[rank])
                .collect(),
            support_words: support_words.into_iter().collect(),
            function_words,
        }
    }

    /// Returns how many distinct words the catalog draws from.
    pub fn word_count(&self) -> usize {
        self.function_words.len() + self.support_words.len()
    }
}

fn word_list(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Maps each of 2^bits slots to the rank whose cumulative weight covers it.
fn sampling_table(weights: &[u64], bits: u32) -> Vec<usize> {
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut total: u64 = 0;
    for weight in weights {
        total += weight;
        cumulative.push(total);
    }
    let size = 1u64 << bits;
    let mut table = Vec::with_capacity(size as usize);
    let mut rank = 0;
    for slot in 0..size {
        // u128: slot * total exceeds u64 for the larger table.
        let target = ((u128::from(slot) * u128::from(total)) >> bits) as u64;
        while cumulative[rank] <= target {
            rank += 1;
        }
        table.push(rank);
    }
    table
}

/// The seeded generator: a 64-bit LCG whose high half is the output.
struct Generator<'vocabulary> {
    state: u64,
    vocabulary: &'vocabulary Vocabulary,
}

impl<'vocabulary> Generator<'vocabulary> {
    fn new(seed: u64, vocabulary: &'vocabulary Vocabulary) -> Generator<'vocabulary> {
        Generator {
            state: seed,
            vocabulary,
        }
    }

    fn next32(&mut self) -> u32 {
        self.state = self.state.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT);
        (self.state >> 32) as u32
    }

    fn below(&mut self, bound: usize) -> usize {
        ((u64::from(self.next32()) * bound as u64) >> 32) as usize
    }

    fn topic_word(&mut self) -> &'static str {
        let draw = self.next32();
        self.vocabulary.topic[(draw >> (32 - TOPIC_TABLE_BITS)) as usize]
    }

    fn title_words(&mut self) -> Vec<&'static str> {
        let length = 5 + self.below(8);
        let mut words = vec![self.topic_word()];
        for _ in 1..length {
            let draw = self.next32();
            if draw & 0xFF < 77 {
                let index = (draw >> 8) as usize % TITLE_FUNCTION_WORDS;
                words.push(self.vocabulary.function_words[index]);
            } else {
                words.push(self.vocabulary.topic[((draw >> 8) & 0xFFFF) as usize]);
            }
        }
        words
    }

    /// Returns `count` words: a topic word when the low 12 bits of a draw are below
    /// `threshold`, a Zipf word otherwise.
    fn words(
        &mut self,
        count: usize,
        topics: &[&'static str],
        threshold: u32,
    ) -> Vec<&'static str> {
        let mut chosen = Vec::with_capacity(count);
        for _ in 0..count {
            let draw = self.next32();
            if draw & 0xFFF < threshold {
                chosen.push(topics[(draw >> 12) as usize % topics.len()]);
            } else {
                chosen.push(self.vocabulary.zipf[(draw >> 12) as usize]);
            }
        }
        chosen
    }

    fn sentences(&mut self, count: usize, topics: &[&'static str], threshold: u32) -> String {
        let mut parts = Vec::new();
        let mut remaining = count;
        while remaining > 0 {
            let length = remaining.min(6 + self.below(13));
            parts.push(sentence(&self.words(length, topics, threshold)));
            remaining -= length;
        }
        parts.join(" ")
    }
}

fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

fn sentence(words: &[&str]) -> String {
    let mut text = capitalized(&words.join(" "));
    text.push('.');
    text
}

/// The generated catalog: documents as NDJSON values (keys in sorted order, as the
/// Python script writes them) and the titles drafts are cut from.
pub struct Catalog {
    pub documents: Vec<Value>,
    titles: Vec<Vec<&'static str>>,
}

/// Generates the first `count` documents of the catalog.
pub fn generate(count: usize, vocabulary: &Vocabulary) -> Catalog {
    let mut generator = Generator::new(CATALOG_SEED, vocabulary);
    let mut documents = Vec::with_capacity(count);
    let mut titles = Vec::new();
    for number in 0..count {
        let title = generator.title_words();
        let mut topics: Vec<&'static str> = title
            .iter()
            .copied()
            .filter(|word| vocabulary.support_words.contains(word))
            .collect();
        for _ in 0..3 {
            topics.push(generator.topic_word());
        }
        let summary_length = 12 + generator.below(19);
        let summary = generator.sentences(summary_length, &topics, SUMMARY_TOPIC_SHARE);
        let body_length = 100 + generator.below(701);
        let body = generator.sentences(body_length, &topics, BODY_TOPIC_SHARE);
        let identifier = format!("kb-{number:06}");

        // Inserted in sorted key order, whether or not serde_json preserves order.
        let mut document = Map::new();
        document.insert("body".into(), body.into());
        let is_lesson = generator.below(10) < 6;
        let url = if is_lesson {
            let course = generator.below(COURSES as usize);
            let position = 1 + generator.below(12);
            let duration = 60 + generator.below(541);
            document.insert("course_id".into(), format!("course-{course:05}").into());
            document.insert("duration_seconds".into(), duration.into());
            document.insert("id".into(), identifier.clone().into());
            document.insert("kind".into(), "lesson".into());
            document.insert("locale".into(), "en".into());
            document.insert("position".into(), position.into());
            format!("https://help.example.com/lessons/{identifier}")
        } else {
            document.insert("id".into(), identifier.clone().into());
            document.insert("kind".into(), "article".into());
            document.insert("locale".into(), "en".into());
            format!("https://help.example.com/articles/{identifier}")
        };
        document.insert("summary".into(), summary.into());
        document.insert("title".into(), capitalized(&title.join(" ")).into());
        document.insert("url".into(), url.into());
        documents.push(Value::Object(document));
        if number % KEPT_TITLE_EVERY == 0 {
            titles.push(title);
        }
    }
    Catalog { documents, titles }
}

/// The kinds of drafts the benchmarks send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftKind {
    /// 3-6 words, ending in `?`.
    Short,
    /// 40-120 words, ending in `.`.
    Long,
    /// 2-5 words and the next one cut to 1-3 letters, still being typed.
    AsYouType,
    /// A short draft with one word of 5+ letters misspelt.
    Typo,
}

impl DraftKind {
    pub fn name(self) -> &'static str {
        match self {
            DraftKind::Short => "short",
            DraftKind::Long => "long",
            DraftKind::AsYouType => "as_you_type",
            DraftKind::Typo => "typo",
        }
    }
}

/// Cuts drafts out of the catalog's kept titles.
pub struct DraftMaker<'catalog> {
    generator: Generator<'catalog>,
    titles: &'catalog [Vec<&'static str>],
}

impl<'catalog> DraftMaker<'catalog> {
    pub fn new(
        catalog: &'catalog Catalog,
        vocabulary: &'catalog Vocabulary,
    ) -> DraftMaker<'catalog> {
        DraftMaker {
            generator: Generator::new(DRAFT_SEED, vocabulary),
            titles: &catalog.titles,
        }
    }

    pub fn draft(&mut self, kind: DraftKind) -> String {
        match kind {
            DraftKind::Short => self.short(),
            DraftKind::Long => self.long(),
            DraftKind::AsYouType => self.as_you_type(),
            DraftKind::Typo => self.with_typo(),
        }
    }

    fn title(&mut self) -> &'catalog [&'static str] {
        let index = self.generator.below(self.titles.len());
        &self.titles[index]
    }

    fn fragment(&mut self, title: &[&'static str], length: usize) -> Vec<String> {
        let start = self
            .generator
            .below(title.len().saturating_sub(length).saturating_add(1).max(1));
        let mut words: Vec<String> = title
            .iter()
            .skip(start)
            .take(length)
            .map(|word| word.to_string())
            .collect();
        while words.len() < length {
            words.push(self.generator.topic_word().to_owned());
        }
        words
    }

    fn short(&mut self) -> String {
        let title = self.title();
        let length = 3 + self.generator.below(4);
        let mut text = self.fragment(title, length).join(" ");
        text.push('?');
        text
    }

    fn long(&mut self) -> String {
        let title = self.title();
        let length = 40 + self.generator.below(81);
        let opening_length = 3 + self.generator.below(4);
        let opening = self.fragment(title, opening_length);
        let rest = self
            .generator
            .sentences(length - opening.len(), title, LONG_DRAFT_TITLE_SHARE);
        format!("{}. {rest}", opening.join(" "))
    }

    fn as_you_type(&mut self) -> String {
        let title = self.title();
        let length = 3 + self.generator.below(4);
        let mut words = self.fragment(title, length);
        let last = words.pop().expect("a fragment has at least three words");
        let typed_length = 1 + self.generator.below(3);
        let typed: String = last.chars().take(typed_length).collect();
        words.push(typed.trim_end_matches('\'').to_owned());
        words.join(" ")
    }

    fn with_typo(&mut self) -> String {
        for _ in 0..10 {
            let title = self.title();
            let length = 3 + self.generator.below(4);
            let mut words = self.fragment(title, length);
            let candidates: Vec<usize> = words
                .iter()
                .enumerate()
                .filter(|(_, word)| word.len() >= 5 && word.chars().all(char::is_alphabetic))
                .map(|(index, _)| index)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let index = candidates[self.generator.below(candidates.len())];
            let mut letters: Vec<char> = words[index].chars().collect();
            let position = 1 + self.generator.below(letters.len() - 2);
            if self.generator.below(2) == 0 {
                letters.swap(position, position + 1);
            } else {
                letters.remove(position);
            }
            words[index] = letters.into_iter().collect();
            let mut text = words.join(" ");
            text.push('?');
            return text;
        }
        self.short()
    }
}

/// Returns the drafts of the load test in order: 40% as-you-type, 35% short, 15% long,
/// 10% with a typo.
pub fn load_mix(
    catalog: &Catalog,
    vocabulary: &Vocabulary,
    count: usize,
) -> Vec<(DraftKind, String)> {
    let mut maker = DraftMaker::new(catalog, vocabulary);
    let mut mix = Generator::new(LOAD_MIX_SEED, vocabulary);
    let mut drafts = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = match mix.below(20) {
            0..=7 => DraftKind::AsYouType,
            8..=14 => DraftKind::Short,
            15..=17 => DraftKind::Long,
            _ => DraftKind::Typo,
        };
        drafts.push((kind, maker.draft(kind)));
    }
    drafts
}
