#!/usr/bin/env python3
"""Writes the benchmark catalog (NDJSON documents for `deflect index`) and the drafts the
load test sends.

The catalog is the one `benches/search.rs` generates in process (`benches/catalog/mod.rs`
implements the same steps): the same seeded generator, vocabulary and arithmetic, so both
benchmarks search the same 100,000 documents. Only integer arithmetic is used, so the two
implementations agree byte for byte (`DEFLECT_BENCH_DUMP_CATALOG` makes the Rust side write
its copy for comparison).

The generator:
  * A 64-bit LCG (Knuth's MMIX constants); `next32` is the high half of the state and
    `below(n)` is `(next32 * n) >> 32`.
  * Words are ranked function words then support words (`benches/catalog/*.txt`). Body
    words follow a Zipf-like law, weight 10^9 // (rank + 3), sampled through a table of
    2^20 slots; topic words (titles) follow 10^9 // (rank + 10) over support words only,
    through a table of 2^16 slots.
  * A document: a title of 5-12 words (topic words, 30% common function words), three
    extra topic words, a summary of 12-30 words and a body of 100-800 words in sentences
    of 6-18 words, where 30% (summary) and 12% (body) of the words are the document's
    topic words and the rest follow the Zipf law. 60% are lessons of one of 12,500
    courses, the rest articles.
  * Drafts are cut from the titles of every 50th document: short (3-6 words, ending in
    "?"), long (40-120 words, ending in "."), as-you-type (2-5 words and the next word cut
    to 1-3 letters, no trailing space) and with a typo (a short draft with one word of 5+
    letters with two letters swapped or one dropped).

Usage: generate_catalog.py --documents 100000 --catalog OUT.ndjson --drafts OUT.tsv
The drafts file has one line per draft: its kind, a tab, and the JSON body of a
`POST /v1/suggest`.
"""

import argparse
import json
import sys
from pathlib import Path

CATALOG_SEED = 0x00DE_F1EC_7C47_A106
DRAFT_SEED = 0x00D2_AF75_5EED_0001
LOAD_MIX_SEED = 0x0010_AD00_0000_0042

MULTIPLIER = 6364136223846793005
INCREMENT = 1442695040888963407
MASK64 = (1 << 64) - 1

ZIPF_TABLE_BITS = 20
TOPIC_TABLE_BITS = 16
TITLE_FUNCTION_WORDS = 40
KEPT_TITLE_EVERY = 50
COURSES = 12_500

VOCABULARY_DIRECTORY = Path(__file__).resolve().parent.parent / "catalog"


def read_words(name):
    lines = (VOCABULARY_DIRECTORY / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def sampling_table(weights, bits):
    """Maps each of 2^bits slots to the word whose cumulative weight covers it."""
    size = 1 << bits
    cumulative = []
    total = 0
    for weight in weights:
        total += weight
        cumulative.append(total)
    table = [0] * size
    rank = 0
    for slot in range(size):
        target = (slot * total) >> bits
        while cumulative[rank] <= target:
            rank += 1
        table[slot] = rank
    return table


class Vocabulary:
    def __init__(self):
        self.function_words = read_words("function_words.txt")
        self.support_words = read_words("support_words.txt")
        self.all_words = self.function_words + self.support_words
        self.zipf = [
            self.all_words[rank]
            for rank in sampling_table(
                [10**9 // (rank + 3) for rank in range(len(self.all_words))], ZIPF_TABLE_BITS
            )
        ]
        self.topic = [
            self.support_words[rank]
            for rank in sampling_table(
                [10**9 // (rank + 10) for rank in range(len(self.support_words))],
                TOPIC_TABLE_BITS,
            )
        ]
        self.is_support_word = set(self.support_words)


class Generator:
    """The seeded generator; every method consumes draws in a fixed order."""

    def __init__(self, seed, vocabulary):
        self.state = seed & MASK64
        self.vocabulary = vocabulary

    def next32(self):
        self.state = (self.state * MULTIPLIER + INCREMENT) & MASK64
        return self.state >> 32

    def below(self, bound):
        return (self.next32() * bound) >> 32

    def topic_word(self):
        return self.vocabulary.topic[self.next32() >> (32 - TOPIC_TABLE_BITS)]

    def title_words(self):
        length = 5 + self.below(8)
        words = [self.topic_word()]
        function_words = self.vocabulary.function_words
        topic = self.vocabulary.topic
        for _ in range(length - 1):
            draw = self.next32()
            if draw & 0xFF < 77:
                words.append(function_words[(draw >> 8) % TITLE_FUNCTION_WORDS])
            else:
                words.append(topic[(draw >> 8) & 0xFFFF])
        return words

    def words(self, count, topics, threshold):
        """Returns `count` words: a topic word when the low 12 bits of a draw are below
        `threshold` (out of 4096), a Zipf word otherwise."""
        zipf = self.vocabulary.zipf
        topic_count = len(topics)
        state = self.state
        chosen = []
        append = chosen.append
        for _ in range(count):
            state = (state * MULTIPLIER + INCREMENT) & MASK64
            draw = state >> 32
            if draw & 0xFFF < threshold:
                append(topics[(draw >> 12) % topic_count])
            else:
                append(zipf[draw >> 12])
        self.state = state
        return chosen

    def sentences(self, count, topics, threshold):
        parts = []
        remaining = count
        while remaining > 0:
            length = min(remaining, 6 + self.below(13))
            parts.append(sentence(self.words(length, topics, threshold)))
            remaining -= length
        return " ".join(parts)


def capitalized(word):
    return word[:1].upper() + word[1:]


def sentence(words):
    return capitalized(" ".join(words)) + "."


def generate_documents(count, vocabulary):
    """Yields (document, title words); the title words of every 50th document are the
    material of the drafts."""
    generator = Generator(CATALOG_SEED, vocabulary)
    for number in range(count):
        title = generator.title_words()
        topics = [word for word in title if word in vocabulary.is_support_word]
        topics += [generator.topic_word() for _ in range(3)]
        summary = generator.sentences(12 + generator.below(19), topics, 1229)
        body = generator.sentences(100 + generator.below(701), topics, 492)
        identifier = f"kb-{number:06d}"
        document = {
            "id": identifier,
            "title": capitalized(" ".join(title)),
            "summary": summary,
            "body": body,
            "locale": "en",
        }
        if generator.below(10) < 6:
            document["kind"] = "lesson"
            document["course_id"] = f"course-{generator.below(COURSES):05d}"
            document["position"] = 1 + generator.below(12)
            document["duration_seconds"] = 60 + generator.below(541)
            document["url"] = f"https://help.example.com/lessons/{identifier}"
        else:
            document["kind"] = "article"
            document["url"] = f"https://help.example.com/articles/{identifier}"
        yield document, title


class DraftMaker:
    """Cuts drafts out of kept titles."""

    def __init__(self, seed, vocabulary, titles):
        self.generator = Generator(seed, vocabulary)
        self.titles = titles

    def title(self):
        return self.titles[self.generator.below(len(self.titles))]

    def fragment(self, title, length):
        start = self.generator.below(max(1, len(title) - length + 1))
        words = list(title[start : start + length])
        while len(words) < length:
            words.append(self.generator.topic_word())
        return words

    def short(self):
        return " ".join(self.fragment(self.title(), 3 + self.generator.below(4))) + "?"

    def long(self):
        title = self.title()
        length = 40 + self.generator.below(81)
        opening = self.fragment(title, 3 + self.generator.below(4))
        rest = self.generator.sentences(length - len(opening), title, 410)
        return " ".join(opening) + ". " + rest

    def as_you_type(self):
        words = self.fragment(self.title(), 3 + self.generator.below(4))
        typed = words[-1][: 1 + self.generator.below(3)].rstrip("'")
        return " ".join(words[:-1] + [typed])

    def with_typo(self):
        for _ in range(10):
            words = self.fragment(self.title(), 3 + self.generator.below(4))
            candidates = [
                index for index, word in enumerate(words) if len(word) >= 5 and word.isalpha()
            ]
            if not candidates:
                continue
            index = candidates[self.generator.below(len(candidates))]
            word = words[index]
            position = 1 + self.generator.below(len(word) - 2)
            if self.generator.below(2) == 0:
                word = word[:position] + word[position + 1] + word[position] + word[position + 2 :]
            else:
                word = word[:position] + word[position + 1 :]
            words[index] = word
            return " ".join(words) + "?"
        return self.short()


def load_mix(vocabulary, titles, count):
    """Returns the drafts of the load test: 40% as-you-type, 35% short, 15% long, 10%
    with a typo, in a fixed random order."""
    maker = DraftMaker(DRAFT_SEED, vocabulary, titles)
    mix = Generator(LOAD_MIX_SEED, vocabulary)
    drafts = []
    for _ in range(count):
        share = mix.below(20)
        if share < 8:
            drafts.append(("as_you_type", maker.as_you_type()))
        elif share < 15:
            drafts.append(("short", maker.short()))
        elif share < 18:
            drafts.append(("long", maker.long()))
        else:
            drafts.append(("typo", maker.with_typo()))
    return drafts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--drafts", type=Path, required=True)
    parser.add_argument("--draft-count", type=int, default=4_000)
    arguments = parser.parse_args()

    for output in (arguments.catalog, arguments.drafts):
        output.parent.mkdir(parents=True, exist_ok=True)
    vocabulary = Vocabulary()
    titles = []
    with arguments.catalog.open("w", encoding="utf-8") as catalog:
        for number, (document, title) in enumerate(
            generate_documents(arguments.documents, vocabulary)
        ):
            catalog.write(json.dumps(document, separators=(",", ":"), sort_keys=True))
            catalog.write("\n")
            if number % KEPT_TITLE_EVERY == 0:
                titles.append([word.lower() for word in title])
    with arguments.drafts.open("w", encoding="utf-8") as drafts:
        for kind, text in load_mix(vocabulary, titles, arguments.draft_count):
            body = json.dumps({"text": text}, separators=(",", ":"))
            drafts.write(f"{kind}\t{body}\n")
    print(
        f"wrote {arguments.documents} documents to {arguments.catalog} and "
        f"{arguments.draft_count} drafts to {arguments.drafts}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
