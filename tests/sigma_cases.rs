//! Hand-written Sigma edge cases, as a table: a rule, one event, whether the rule must match
//! (or be rejected when it loads), and why. Every case runs through kuzet's compiled matcher
//! (`RuleSet::matches_into`: router, prefilter, leaves) and through the reference interpreter
//! (`matcher::reference`); both must give the expected answer.
//!
//! Synthetic cases (the first tables) hold only the `detection:` section, in YAML flow
//! style; the harness adds a title, an id and `logsource: {product: test}`, builds them with
//! `no_default_pipelines` (plus one `value_placeholders` pipeline) and gives every event that
//! logsource. They are also put to the pySigma oracle (`tests/oracle/`): a case marked
//! `.differs(..)` is a deliberate difference, where the reference must give the *opposite*
//! answer (listed in `tests/oracle/SEMANTICS.md`, "Where kuzet differs from the reference");
//! any other synthetic case must get the same answer from the reference. The Windows cases
//! (last table) are whole SigmaHQ-style rules built with the shipped pipelines
//! (`EngineConfig::default()`: `rules/pipelines/windows.yml`) and no event logsource, as
//! `kuzet replay` runs them on Windows event files; the oracle knows neither kuzet's
//! evtx_dump flattening nor logsource routing, so they are not put to it.
//!
//! `SEMANTICS.md` section numbers in the reasons refer to `tests/oracle/SEMANTICS.md`.

#[path = "sigma/support.rs"]
mod support;

use std::collections::BTreeMap;

use kuzet::sigma::Logsource;
use serde_json::{Value, json};
use support::{Kuzet, Setup, oracle, oracle_matches};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Match,
    NoMatch,
    /// The rule does not load.
    Rejected,
}

#[derive(Clone, Copy, Debug)]
enum Ref {
    /// The reference gives the same answer.
    Agrees,
    /// The reference gives the opposite answer, deliberately (the reason, shown on failure).
    #[allow(dead_code)]
    Differs(&'static str),
}

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    /// Synthetic cases: the `detection:` value. Windows cases: the whole rule.
    rule: &'static str,
    /// One JSON line.
    event: &'static str,
    expect: Expect,
    why: &'static str,
    reference: Ref,
}

const fn hit(
    name: &'static str,
    rule: &'static str,
    event: &'static str,
    why: &'static str,
) -> Case {
    Case {
        name,
        rule,
        event,
        expect: Expect::Match,
        why,
        reference: Ref::Agrees,
    }
}

const fn miss(
    name: &'static str,
    rule: &'static str,
    event: &'static str,
    why: &'static str,
) -> Case {
    Case {
        expect: Expect::NoMatch,
        ..hit(name, rule, event, why)
    }
}

const fn rejected(name: &'static str, rule: &'static str, why: &'static str) -> Case {
    Case {
        expect: Expect::Rejected,
        ..hit(name, rule, "{}", why)
    }
}

impl Case {
    /// The reference answers the other way, and kuzet keeps its answer on purpose.
    const fn differs(self, reason: &'static str) -> Case {
        Case {
            reference: Ref::Differs(reason),
            ..self
        }
    }
}

/// The pipeline the synthetic cases are built with (and the oracle is given).
const PLACEHOLDERS: &str = "name: cases placeholders
vars:
  hosts: [AbC, 'db?']
transformations:
  - type: value_placeholders
";

// ------------------------------------------------------------------------------------------
// Synthetic cases

const ESCAPING: &[Case] = &[
    hit(
        "escaped star is a literal star",
        r"{sel: {a: 'x\*y'}, condition: sel}",
        r#"{"a": "x*y"}"#,
        r"`\*` is a literal `*` (2.4)",
    ),
    miss(
        "escaped star is no wildcard",
        r"{sel: {a: 'x\*y'}, condition: sel}",
        r#"{"a": "xay"}"#,
        r"`\*` is a literal `*` (2.4)",
    ),
    hit(
        "double backslash then star: backslash and wildcard",
        r"{sel: {a: 'x\\*'}, condition: sel}",
        r#"{"a": "x\\abc"}"#,
        r"`\\` is one literal backslash, then `*` is a wildcard (2.4)",
    ),
    miss(
        "double backslash then star needs the backslash",
        r"{sel: {a: 'x\\*'}, condition: sel}",
        r#"{"a": "xabc"}"#,
        r"`\\` is one literal backslash (2.4)",
    ),
    hit(
        "four backslashes are two",
        r"{sel: {a: 'a\\\\b'}, condition: sel}",
        r#"{"a": "a\\\\b"}"#,
        r"each `\\` is one backslash (2.4)",
    ),
    hit(
        "lone trailing backslash is literal",
        r"{sel: {a: 'dir\'}, condition: sel}",
        r#"{"a": "dir\\"}"#,
        "a trailing lone backslash is kept (2.4)",
    ),
    miss(
        "lone trailing backslash is required",
        r"{sel: {a: 'dir\'}, condition: sel}",
        r#"{"a": "dir"}"#,
        "a trailing lone backslash is kept (2.4)",
    ),
    hit(
        "backslash before a letter is literal",
        r"{sel: {a: 'C:\Windows\cmd.exe'}, condition: sel}",
        r#"{"a": "c:\\windows\\CMD.EXE"}"#,
        r"`\W`, `\c` keep the backslash; ASCII case folds (2.3, 2.4)",
    ),
    hit(
        "escaped question mark",
        r"{sel: {a: 'a\?b'}, condition: sel}",
        r#"{"a": "a?b"}"#,
        r"`\?` is a literal `?` (2.4)",
    ),
    miss(
        "escaped question mark is no wildcard",
        r"{sel: {a: 'a\?b'}, condition: sel}",
        r#"{"a": "axb"}"#,
        r"`\?` is a literal `?` (2.4)",
    ),
    hit(
        "question mark is one character, not one byte",
        "{sel: {a: 'a?b'}, condition: sel}",
        r#"{"a": "aéb"}"#,
        "`?` is one character, like SQL `_` (2.4)",
    ),
    miss(
        "question mark is exactly one character",
        "{sel: {a: 'a?b'}, condition: sel}",
        r#"{"a": "aééb"}"#,
        "`?` is one character (2.4)",
    ),
    hit(
        "cased escaped star",
        r"{sel: {a|cased: 'A\*'}, condition: sel}",
        r#"{"a": "A*"}"#,
        "GLOB with the star bracketed (2.6)",
    ),
    miss(
        "cased is case-sensitive",
        r"{sel: {a|cased: 'A\*'}, condition: sel}",
        r#"{"a": "a*"}"#,
        "`cased` uses GLOB (2.6)",
    ),
    hit(
        "percent and underscore are literal",
        "{sel: {a: 'a%b_c'}, condition: sel}",
        r#"{"a": "A%B_C"}"#,
        "LIKE metacharacters are escaped (2.3)",
    ),
    miss(
        "underscore is not a wildcard",
        "{sel: {a: 'a%b_c'}, condition: sel}",
        r#"{"a": "a%bxc"}"#,
        "LIKE metacharacters are escaped (2.3)",
    ),
];

const WINDASH: &[Case] = &[
    hit(
        "windash: slash for dash",
        "{sel: {a|windash|contains: ' -enc'}, condition: sel}",
        r#"{"a": "p.exe /enc x"}"#,
        "`-` expands to `/` (2.16)",
    ),
    hit(
        "windash: en dash",
        "{sel: {a|windash|contains: ' -enc'}, condition: sel}",
        r#"{"a": "p.exe \u2013enc x"}"#,
        "`-` expands to U+2013 (2.16)",
    ),
    hit(
        "windash: em dash",
        "{sel: {a|windash|contains: ' -enc'}, condition: sel}",
        r#"{"a": "p.exe \u2014enc x"}"#,
        "`-` expands to U+2014 (2.16)",
    ),
    hit(
        "windash: horizontal bar",
        "{sel: {a|windash|contains: ' /enc'}, condition: sel}",
        r#"{"a": "p.exe \u2015enc x"}"#,
        "`/` expands to U+2015 as well (2.16)",
    ),
    miss(
        "windash: hyphen U+2010 is not a dash",
        "{sel: {a|windash|contains: ' -enc'}, condition: sel}",
        r#"{"a": "p.exe \u2010enc x"}"#,
        "U+2010 is not among the replacements (2.16)",
    ),
    miss(
        "windash: a dash inside a word stays",
        "{sel: {a|windash: 'a-b'}, condition: sel}",
        r#"{"a": "a/b"}"#,
        r"only a dash after a non-word character and before a word character expands (`\B[-/]\b`, 2.16)",
    ),
    hit(
        "windash: three dashes expand",
        "{sel: {a|windash|contains: '-a -b -c'}, condition: sel}",
        r#"{"a": "x /a \u2013b /c"}"#,
        "up to three dashes, all combinations (2.16)",
    ),
    rejected(
        "windash: four dashes are refused",
        "{sel: {a|windash|contains: '-a -b -c -d'}, condition: sel}",
        "more than three dashes in one value is an error (2.16, 4)",
    ),
    hit(
        "windash: expansions stay OR inside all",
        "{sel: {a|windash|contains|all: ['-a', '-b']}, condition: sel}",
        r#"{"a": "x /a \u2014b"}"#,
        "`all` ANDs the values, each value's expansions stay OR (2.1)",
    ),
];

const BASE64: &[Case] = &[
    hit(
        "base64: the whole value",
        "{sel: {a|base64: ping}, condition: sel}",
        r#"{"a": "cGluZw=="}"#,
        "UTF-8, padded (2.14)",
    ),
    hit(
        "base64 compares case-insensitively",
        "{sel: {a|base64: ping}, condition: sel}",
        r#"{"a": "cgluzw=="}"#,
        "it is an ordinary string comparison (2.14)",
    ),
    hit(
        "base64offset: offset 0",
        "{sel: {a|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "xx cGluZw== yy"}"#,
        "variant `cGluZ` (2.14)",
    ),
    hit(
        "base64offset: offset 1",
        "{sel: {a|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "IHBpbmc="}"#,
        "variant `Bpbm`, from base64(' ping') (2.14)",
    ),
    hit(
        "base64offset: after other bytes",
        "{sel: {a|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "eHggIHBpbmc="}"#,
        "base64('xx  ping'): `ping` at byte 4, offset 1 again, variant `Bpbm` (2.14)",
    ),
    hit(
        "base64offset: offset 2, exactly",
        "{sel: {a|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "ICBwaW5n"}"#,
        "variant `waW5n`, from base64('  ping') (2.14)",
    ),
    miss(
        "base64offset: another word",
        "{sel: {a|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "cG9uZw=="}"#,
        "base64('pong') holds none of the variants (2.14)",
    ),
    hit(
        "wide then base64offset",
        "{sel: {a|wide|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "eABwAGkAbgBnAA=="}"#,
        "UTF-16LE before base64, at offset 2 (2.15)",
    ),
    hit(
        "utf16be then base64offset",
        "{sel: {a|utf16be|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "AHgAcABpAG4AZw=="}"#,
        "UTF-16BE (2.15)",
    ),
    hit(
        "utf16 puts a byte order mark first",
        "{sel: {a|utf16|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "//5wAGkAbgBnAA=="}"#,
        "FF FE then UTF-16LE (2.15)",
    ),
    miss(
        "utf16 needs the byte order mark",
        "{sel: {a|utf16|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "cABpAG4AZwA="}"#,
        "the mark is part of every variant (2.15)",
    ),
    rejected(
        "base64 of a wildcard",
        "{sel: {a|base64: 'pi*'}, condition: sel}",
        "wildcards cannot be encoded (4)",
    ),
];

const CIDR: &[Case] = &[
    hit(
        "cidr /23: last address",
        "{sel: {a|cidr: 192.168.0.0/23}, condition: sel}",
        r#"{"a": "192.168.1.255"}"#,
        "inside the network (2.12)",
    ),
    miss(
        "cidr /23: next address",
        "{sel: {a|cidr: 192.168.0.0/23}, condition: sel}",
        r#"{"a": "192.168.2.0"}"#,
        "outside the network (2.12)",
    ),
    hit(
        "cidr /31: both addresses",
        "{sel: {a|cidr: 10.0.0.0/31}, condition: sel}",
        r#"{"a": "10.0.0.1"}"#,
        "inside (2.12)",
    ),
    miss(
        "cidr /31: the third address",
        "{sel: {a|cidr: 10.0.0.0/31}, condition: sel}",
        r#"{"a": "10.0.0.2"}"#,
        "outside (2.12)",
    ),
    hit(
        "cidr: a bare address is a /32",
        "{sel: {a|cidr: 10.1.2.3}, condition: sel}",
        r#"{"a": "10.1.2.3"}"#,
        "a bare address is a /32 (2.12)",
    ),
    miss(
        "cidr: not an address",
        "{sel: {a|cidr: 10.0.0.0/8}, condition: sel}",
        r#"{"a": "10.x"}"#,
        "kuzet parses the address",
    )
    .differs("the reference matches the text prefix `10.` (2.12)"),
    miss(
        "cidr: trailing garbage",
        "{sel: {a|cidr: 192.168.0.0/24}, condition: sel}",
        r#"{"a": "192.168.0.1x"}"#,
        "kuzet parses the address",
    )
    .differs("the reference matches the text prefix `192.168.0.` (2.12)"),
    miss(
        "cidr /0 is IPv4 only",
        "{sel: {a|cidr: 0.0.0.0/0}, condition: sel}",
        r#"{"a": "hello"}"#,
        "kuzet: no address, no match",
    )
    .differs("the reference turns /0 into `LIKE '%'`: any present value (2.12)"),
    hit(
        "cidr v6 /32",
        "{sel: {a|cidr: '2001:db8::/32'}, condition: sel}",
        r#"{"a": "2001:db8::1"}"#,
        "inside (2.12)",
    ),
    hit(
        "cidr v6: upper case",
        "{sel: {a|cidr: '2001:db8::/32'}, condition: sel}",
        r#"{"a": "2001:DB8:FFFF::1"}"#,
        "inside (2.12)",
    ),
    miss(
        "cidr v6: the next /32",
        "{sel: {a|cidr: '2001:db8::/32'}, condition: sel}",
        r#"{"a": "2001:db9::1"}"#,
        "outside (2.12)",
    ),
    hit(
        "cidr v6: a non-canonical spelling",
        "{sel: {a|cidr: '2001:db8::/32'}, condition: sel}",
        r#"{"a": "2001:0db8:0:0::1"}"#,
        "kuzet parses the address",
    )
    .differs("the reference's patterns follow the RFC 5952 spelling only (2.12)"),
    hit(
        "cidr v6 /10: last block",
        "{sel: {a|cidr: 'fe80::/10'}, condition: sel}",
        r#"{"a": "febf::1"}"#,
        "inside (2.12)",
    ),
    miss(
        "cidr v6 /10: next block",
        "{sel: {a|cidr: 'fe80::/10'}, condition: sel}",
        r#"{"a": "fec0::1"}"#,
        "outside (2.12)",
    ),
    miss(
        "cidr v6 /10: a short group",
        "{sel: {a|cidr: 'fe80::/10'}, condition: sel}",
        r#"{"a": "fe8::1"}"#,
        "0fe8:: is not in fe80::/10",
    )
    .differs("the reference's `fe8?:*` lets `?` match the colon (2.12)"),
    hit(
        "cidr v6 /128",
        "{sel: {a|cidr: '::1/128'}, condition: sel}",
        r#"{"a": "::1"}"#,
        "the address itself (2.12)",
    ),
    hit(
        "cidr v6 /128, spelled out",
        "{sel: {a|cidr: '::1/128'}, condition: sel}",
        r#"{"a": "0:0:0:0:0:0:0:1"}"#,
        "kuzet parses the address",
    )
    .differs("the reference compares the text `::1` (2.12)"),
];

const ALL_AND_LISTS: &[Case] = &[
    hit(
        "contains|all: any order, any case",
        "{sel: {a|contains|all: [foo, bar]}, condition: sel}",
        r#"{"a": "BAR then FOO"}"#,
        "every value must occur (2.1, 2.5)",
    ),
    miss(
        "contains|all: one missing",
        "{sel: {a|contains|all: [foo, bar]}, condition: sel}",
        r#"{"a": "foo only"}"#,
        "every value must occur (2.1)",
    ),
    hit(
        "all of two case variants",
        "{sel: {a|all: [foo, FOO]}, condition: sel}",
        r#"{"a": "Foo"}"#,
        "both equalities hold case-insensitively (2.1, 2.3)",
    ),
    miss(
        "all of two different values",
        "{sel: {a|all: [foo, bar]}, condition: sel}",
        r#"{"a": "foo"}"#,
        "a value cannot equal both (2.1)",
    ),
    hit(
        "a list is OR",
        "{sel: {a: [x, y, z, w, v]}, condition: sel}",
        r#"{"a": "W"}"#,
        "any value (2.1); five values compile to a string set",
    ),
    hit(
        "a list of maps is OR",
        "{sel: [{a: x}, {b: y}], condition: sel}",
        r#"{"b": "y"}"#,
        "any map (2.1)",
    ),
    miss(
        "a map is AND",
        "{sel: {a: x, b: y}, condition: sel}",
        r#"{"a": "x"}"#,
        "every item; a missing field fails its item (2.1, 2.2)",
    ),
];

const KEYWORDS: &[Case] = &[
    hit(
        "keyword: case-insensitive substring",
        "{keywords: [foo], condition: keywords}",
        r#"{"message": "xFOOy"}"#,
        "keywords are LIKE '%foo%' (2.17)",
    ),
    hit(
        "keyword: a number by its spelling",
        "{keywords: 42, condition: keywords}",
        r#"{"message": "id 142"}"#,
        "numbers are searched as text (2.17)",
    ),
    hit(
        "keyword: wildcard",
        "{keywords: 'b*r', condition: keywords}",
        r#"{"message": "a bazaar"}"#,
        "`*` inside a keyword (2.17)",
    ),
    miss(
        "keyword: all",
        "{keywords: {'|all': [foo, bar]}, condition: keywords}",
        r#"{"message": "foo baz"}"#,
        "`|all` ANDs keywords (2.17)",
    ),
    hit(
        "keyword: cased",
        "{keywords: {'|cased': Foo}, condition: keywords}",
        r#"{"message": "a Foo b"}"#,
        "GLOB '*Foo*' (2.17)",
    ),
    miss(
        "keyword: cased is case-sensitive",
        "{keywords: {'|cased': Foo}, condition: keywords}",
        r#"{"message": "a foo b"}"#,
        "GLOB '*Foo*' (2.17)",
    ),
    hit(
        "keyword: regex",
        "{keywords: {'|re': 'fo+ b'}, condition: keywords}",
        r#"{"message": "a fooo b"}"#,
        "REGEXP on the text (2.17)",
    ),
    hit(
        "keyword without a message: the raw line",
        "{keywords: [foo], condition: keywords}",
        r#"{"user": "foo"}"#,
        "kuzet searches the whole line when there is no `message`; the value is in it",
    ),
    hit(
        "keyword without a message: field names too",
        "{keywords: [user], condition: keywords}",
        r#"{"user": "x"}"#,
        "kuzet searches the whole line, names included",
    )
    .differs("the reference searches values only (2.17)"),
    miss(
        "keyword with a message: other fields are not searched",
        "{keywords: [foo], condition: keywords}",
        r#"{"message": "x", "user": "foo"}"#,
        "kuzet searches `message` only, when there is one",
    )
    .differs("the reference searches every value (2.17)"),
];

const NULL_EMPTY_MISSING: &[Case] = &[
    hit(
        "null: absent",
        "{sel: {a: null}, condition: sel}",
        r#"{"b": "x"}"#,
        "`IS NULL` (2.11)",
    ),
    hit(
        "null: JSON null",
        "{sel: {a: null}, condition: sel}",
        r#"{"a": null}"#,
        "`IS NULL` (2.11)",
    ),
    miss(
        "null: the empty string is a value",
        "{sel: {a: null}, condition: sel}",
        r#"{"a": ""}"#,
        "`'' IS NULL` is false (2.11)",
    ),
    hit(
        "empty string: only the empty string",
        "{sel: {a: ''}, condition: sel}",
        r#"{"a": ""}"#,
        "`a=''` (2.11)",
    ),
    miss(
        "empty string: not JSON null",
        "{sel: {a: ''}, condition: sel}",
        r#"{"a": null}"#,
        "NULL equals nothing (2.11)",
    ),
    miss(
        "empty string: not absent",
        "{sel: {a: ''}, condition: sel}",
        r#"{"b": ""}"#,
        "a missing field fails every test but `null` (2.2)",
    ),
    hit(
        "exists: the empty string exists",
        "{sel: {a|exists: true}, condition: sel}",
        r#"{"a": ""}"#,
        "`IS NOT NULL` (2.11)",
    ),
    miss(
        "exists: JSON null does not",
        "{sel: {a|exists: true}, condition: sel}",
        r#"{"a": null}"#,
        "`IS NOT NULL` (2.11)",
    ),
    hit(
        "exists false: JSON null",
        "{sel: {a|exists: false}, condition: sel}",
        r#"{"a": null}"#,
        "`IS NULL` (2.11)",
    ),
    hit(
        "neq: a missing field matches",
        "{sel: {a|neq: x}, condition: sel}",
        r#"{"b": "x"}"#,
        "`neq` negates the item (2.10)",
    ),
    hit(
        "neq: JSON null matches",
        "{sel: {a|neq: x}, condition: sel}",
        r#"{"a": null}"#,
        "`neq` negates the item (2.10)",
    ),
    miss(
        "neq: the value in another case",
        "{sel: {a|neq: x}, condition: sel}",
        r#"{"a": "X"}"#,
        "`NOT (a='x')`, ASCII case-insensitive (2.10)",
    ),
    hit(
        "not: a missing field",
        "{sel: {a: x}, condition: not sel}",
        r#"{"b": 1}"#,
        "every NOT is two-valued (2.2)",
    ),
    hit(
        "contains empty: any present value",
        "{sel: {a|contains: ''}, condition: sel}",
        r#"{"a": ""}"#,
        "`LIKE '%'` (2.5)",
    ),
    miss(
        "contains empty: not null",
        "{sel: {a|contains: ''}, condition: sel}",
        r#"{"a": null}"#,
        "`LIKE` on NULL is not true (2.5)",
    ),
    miss(
        "fieldref: null is equal to nothing",
        "{sel: {a|fieldref: b}, condition: sel}",
        r#"{"a": "", "b": null}"#,
        "`a=b` with b NULL (2.13)",
    ),
    hit(
        "fieldref: two empty strings",
        "{sel: {a|fieldref: b}, condition: sel}",
        r#"{"a": "", "b": ""}"#,
        "`''=''` (2.13)",
    ),
    hit(
        "fieldref contains: empty other field",
        "{sel: {a|fieldref|contains: b}, condition: sel}",
        r#"{"a": "abc", "b": ""}"#,
        "an empty `b` is in everything (2.13)",
    ),
    miss(
        "fieldref contains: null other field",
        "{sel: {a|fieldref|contains: b}, condition: sel}",
        r#"{"a": "abc", "b": null}"#,
        "`LIKE '%' || NULL || '%'` is NULL (2.13)",
    ),
];

const NUMBERS: &[Case] = &[
    hit(
        "number rule, string value",
        "{sel: {a: 4624}, condition: sel}",
        r#"{"a": "4624"}"#,
        "the number's text equals (2.8)",
    ),
    miss(
        "number rule, zero-padded string",
        "{sel: {a: 4624}, condition: sel}",
        r#"{"a": "04624"}"#,
        "text comparison on a string field (2.8)",
    ),
    hit(
        "number rule, integer value",
        "{sel: {a: 4624}, condition: sel}",
        r#"{"a": 4624}"#,
        "numeric equality (2.8)",
    ),
    hit(
        "string rule, integer value",
        "{sel: {a: '4624'}, condition: sel}",
        r#"{"a": 4624}"#,
        "the integer's text equals (2.8)",
    ),
    hit(
        "number rule, float value",
        "{sel: {a: 4624}, condition: sel}",
        r#"{"a": 4624.0}"#,
        "kuzet compares JSON numbers numerically",
    )
    .differs("a JSON float makes a TEXT column: '4624.0' <> '4624' (1.3, 2.8)"),
    hit(
        "integral float in the rule",
        "{sel: {a: 2.0}, condition: sel}",
        r#"{"a": 2}"#,
        "2.0 = 2 numerically (the router must route on the event's spelling `2`)",
    ),
    hit(
        "small float in the rule",
        "{sel: {a: 0.0000001}, condition: sel}",
        r#"{"a": 1e-7}"#,
        "numeric equality; YAML writes the number `1e-7`, the event's prints `0.0000001`: the router must route on both",
    ),
    hit(
        "integral float in the rule, string value",
        "{sel: {a: 2.0}, condition: sel}",
        r#"{"a": "2"}"#,
        "pySigma reads the number 2.0 as 2, and so does kuzet (2.8)",
    ),
    miss(
        "integral float in the rule, string spelled like it",
        "{sel: {a: 2.0}, condition: sel}",
        r#"{"a": "2.0"}"#,
        "text comparison with the number's spelling `2` (2.8)",
    ),
    hit(
        "gt on an integer",
        "{sel: {a|gt: 5}, condition: sel}",
        r#"{"a": 10}"#,
        "numeric (2.9)",
    ),
    miss(
        "gt: equal is not greater",
        "{sel: {a|gt: 5}, condition: sel}",
        r#"{"a": 5}"#,
        "numeric (2.9)",
    ),
    hit(
        "gte with a fraction",
        "{sel: {a|gte: 1.5}, condition: sel}",
        r#"{"a": 2}"#,
        "numeric (2.9)",
    ),
    miss(
        "lt: missing field",
        "{sel: {a|lt: 5}, condition: sel}",
        r#"{"b": 1}"#,
        "a missing field fails (2.9)",
    ),
    hit(
        "gt on a numeric string",
        "{sel: {a|gt: 5}, condition: sel}",
        r#"{"a": "10"}"#,
        "kuzet reads numbers in strings",
    )
    .differs("a string field is compared as text: '10' < '5' (2.8)"),
    miss(
        "gt on a word",
        "{sel: {a|gt: 5}, condition: sel}",
        r#"{"a": "x"}"#,
        "kuzet: not a number, no comparison",
    )
    .differs("as text, 'x' > '5' (2.8)"),
    hit(
        "true rule, JSON true",
        "{sel: {a: true}, condition: sel}",
        r#"{"a": true}"#,
        "(2.8)",
    ),
    hit(
        "true rule, string TRUE",
        "{sel: {a: true}, condition: sel}",
        r#"{"a": "TRUE"}"#,
        "`a='true' OR a=1`, NOCASE (2.8)",
    ),
    hit(
        "true rule, integer 1",
        "{sel: {a: true}, condition: sel}",
        r#"{"a": 1}"#,
        "`a=1` (2.8)",
    ),
    miss(
        "number rule, JSON true",
        "{sel: {a: 1}, condition: sel}",
        r#"{"a": true}"#,
        "kuzet keeps JSON booleans apart from numbers",
    )
    .differs("SQLite stores true as 1 (1.3)"),
    rejected(
        "gt needs a number",
        "{sel: {a|gt: five}, condition: sel}",
        "(4)",
    ),
];

const UNICODE_AND_SPACES: &[Case] = &[
    miss(
        "non-ASCII letters do not fold",
        "{sel: {a: ärger}, condition: sel}",
        r#"{"a": "ÄRGER"}"#,
        "NOCASE folds A-Z only (2.3)",
    ),
    hit(
        "ASCII letters around them do",
        "{sel: {a: ärger}, condition: sel}",
        r#"{"a": "äRGER"}"#,
        "NOCASE folds A-Z only (2.3)",
    ),
    miss(
        "contains: no Unicode folding",
        "{sel: {a|contains: Ω}, condition: sel}",
        r#"{"a": "xωy"}"#,
        "LIKE folds ASCII only (2.5)",
    ),
    hit(
        "regex i folds Unicode",
        "{sel: {a|re|i: ärger}, condition: sel}",
        r#"{"a": "xÄRGERx"}"#,
        "`(?i)` is Unicode (2.7)",
    ),
    hit(
        "regex i folds Unicode, long literal",
        "{sel: {a|re|i: 'Ωmega\\d'}, condition: sel}",
        r#"{"a": "ωMEGA1"}"#,
        "`(?i)` is Unicode (2.7); the prefilter must not demand the rule's spelling",
    ),
    miss(
        "trailing space in the value",
        "{sel: {a|endswith: '.exe'}, condition: sel}",
        r#"{"a": "x.exe "}"#,
        "no trimming (2.5)",
    ),
    hit(
        "trailing space in the rule",
        "{sel: {a|endswith: '.exe '}, condition: sel}",
        r#"{"a": "x.EXE "}"#,
        "no trimming (2.5)",
    ),
    miss(
        "trailing space in the rule is required",
        "{sel: {a: 'admin '}, condition: sel}",
        r#"{"a": "admin"}"#,
        "no trimming (2.3)",
    ),
];

const CONDITIONS: &[Case] = &[
    miss(
        "1 of * leaves _ names out",
        "{_hidden: {a: x}, sel: {b: y}, condition: '1 of *'}",
        r#"{"a": "x"}"#,
        "a pattern not starting with `_` does not select `_` names (2.1)",
    ),
    hit(
        "1 of _* takes them",
        "{_hidden: {a: x}, sel: {b: y}, condition: '1 of _*'}",
        r#"{"a": "x"}"#,
        "a pattern starting with `_` selects `_` names (2.1)",
    ),
    miss(
        "1 of them leaves _ names out",
        "{_hidden: {a: x}, sel: {b: y}, condition: 1 of them}",
        r#"{"a": "x"}"#,
        "`them` is every name not starting with `_` (2.1)",
    ),
    rejected(
        "them with only _ names selects nothing",
        "{_a: {a: x}, _b: {b: y}, condition: 1 of them}",
        "an empty selector is an error (2.1)",
    ),
    rejected(
        "a pattern that selects only _ names selects nothing",
        "{_a: {a: x}, _b: {b: y}, condition: '1 of *'}",
        "an empty selector is an error (2.1)",
    ),
    hit(
        "not binds tighter than and, and than or",
        "{s1: {a: x}, s2: {b: x}, s3: {c: x}, condition: not s1 and s2 or s3}",
        r#"{"c": "x", "a": "x"}"#,
        "`((not s1) and s2) or s3` (2.1)",
    ),
    hit(
        "condition list: any condition",
        "{s1: {a: x}, s2: {b: x}, condition: [s1, s2]}",
        r#"{"b": "x"}"#,
        "each condition is a query; the rule matches if any does (2.1)",
    ),
    hit(
        "all of a pattern",
        "{sel_a: {a: x}, sel_b: {b: x}, other: {c: x}, condition: all of sel_*}",
        r#"{"a": "x", "b": "x"}"#,
        "(2.1)",
    ),
];

const PIPELINE: &[Case] = &[
    hit(
        "expand: values are OR",
        "{sel: {a|expand: '%hosts%'}, condition: sel}",
        r#"{"a": "abc"}"#,
        "placeholder values, ASCII case-insensitive (2.18)",
    ),
    hit(
        "expand: wildcards in values are live",
        "{sel: {a|expand: '%hosts%'}, condition: sel}",
        r#"{"a": "dbx"}"#,
        "`db?` (2.18)",
    ),
    miss(
        "expand keeps cased",
        "{sel: {a|expand|cased: '%hosts%'}, condition: sel}",
        r#"{"a": "abc"}"#,
        "kuzet keeps the rule's `cased` on the replaced values",
    )
    .differs("pySigma's placeholder replacement drops `cased` (the SQL is `a='AbC' OR …`)"),
];

const DIALECT: &[Case] = &[
    miss(
        "regex dollar before a final newline",
        "{sel: {a|re: 'abc$'}, condition: sel}",
        r#"{"a": "abc\n"}"#,
        "kuzet's `$` is the end of the text",
    )
    .differs("Python's `$` also matches before a final newline (2.7)"),
    hit(
        "utf16le is accepted",
        "{sel: {a|utf16le|base64offset|contains: ping}, condition: sel}",
        r#"{"a": "cABpAG4AZwA="}"#,
        "the Sigma spec lists `utf16le` (= `wide`)",
    )
    .differs("pySigma 2.0.1 has no `utf16le` modifier (2.15, 4)"),
    hit(
        "cidr with host bits: their network",
        "{sel: {a|cidr: 10.0.0.1/24}, condition: sel}",
        r#"{"a": "10.0.0.200"}"#,
        "kuzet takes the network the address is in",
    )
    .differs("pySigma refuses host bits (2.12, 4)"),
    hit(
        "gt with a numeric string",
        "{sel: {a|gt: '5'}, condition: sel}",
        r#"{"a": 10}"#,
        "kuzet reads the string as the number",
    )
    .differs("pySigma refuses a string for `gt` (2.8, 4)"),
    hit(
        "cased on a number",
        "{sel: {a|cased: 42}, condition: sel}",
        r#"{"a": "42"}"#,
        "kuzet compares the number's text",
    )
    .differs("pySigma takes `cased` on strings only"),
    miss(
        "field names are exact",
        "{sel: {a: x}, condition: sel}",
        r#"{"A": "x"}"#,
        "JSON keys are case-sensitive",
    )
    .differs("SQLite column names are case-insensitive (1.3)"),
    rejected(
        "a duplicate key",
        "{sel: {a: x, a: y}, condition: sel}",
        "kuzet refuses a document with a duplicate key",
    )
    .differs("PyYAML keeps the last value"),
    hit(
        "yes is a string",
        "{sel: {a: yes}, condition: sel}",
        r#"{"a": "yes"}"#,
        "kuzet reads rules as YAML 1.2: a plain `yes` is a string",
    )
    .differs("PyYAML reads YAML 1.1: `yes` is true, `a='true' OR a=1`"),
];

// ------------------------------------------------------------------------------------------
// Windows cases: whole rules, shipped pipelines, events as Windows tools write them

/// A SigmaHQ-style process-creation rule (`proc_creation_win_whoami_all`, shortened).
const WHOAMI: &str = r"title: Enumerate All Information With Whoami.EXE
id: 644a59f4-0000-4000-8000-000000000001
status: test
author: test
logsource:
  category: process_creation
  product: windows
detection:
  selection_main_img:
    - Image|endswith: '\whoami.exe'
    - OriginalFileName: 'whoami.exe'
  selection_main_cli:
    CommandLine|contains|windash: ' -all'
  condition: all of selection_main_*
level: medium
";

/// Defender rules write `ThreatName`; Defender writes `Threat Name`.
const DEFENDER: &str = r"title: Defender Threat Detected - Mimikatz
id: 644a59f4-0000-4000-8000-000000000002
logsource:
  product: windows
  service: windefend
detection:
  selection:
    EventID: 1116
    ThreatName|contains: 'Mimikatz'
  condition: selection
level: high
";

/// A network rule: must never fire on a Windows event, whatever its fields.
const ZEEK: &str = r"title: Zeek DNS query for an evil domain
id: 644a59f4-0000-4000-8000-000000000003
logsource:
  product: zeek
  service: dns
detection:
  selection:
    query|contains: 'evil'
  condition: selection
level: high
";

/// A Security-log rule with a `cidr` exclusion.
const NETWORK_LOGON: &str = r"title: Network logon from outside the private ranges
id: 644a59f4-0000-4000-8000-000000000004
logsource:
  product: windows
  service: security
detection:
  selection:
    EventID: 4624
    LogonType: 3
  filter_main_local:
    IpAddress|cidr:
      - '10.0.0.0/8'
      - '127.0.0.0/8'
      - '::1/128'
  filter_optional_empty:
    IpAddress: '-'
  condition: selection and not 1 of filter_*
level: low
";

/// evtx_dump output of Sysmon event 1 (`whoami /all`).
const EVTX_WHOAMI: &str = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},"EventID":1,"Version":5,"Level":4,"Task":1,"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2024-01-01T10:00:00.000000Z"}},"EventRecordID":1234,"Correlation":null,"Execution":{"#attributes":{"ProcessID":3000,"ThreadID":4000}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS01.corp.local","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"RuleName":"-","UtcTime":"2024-01-01 10:00:00.000","ProcessGuid":"{a1b2c3d4-0000-0000-0000-000000000001}","ProcessId":1234,"Image":"C:\\Windows\\System32\\whoami.exe","FileVersion":"10.0.19041.1","Description":"whoami - displays logged on user information","Product":"Microsoft® Windows® Operating System","Company":"Microsoft Corporation","OriginalFileName":"whoami.exe","CommandLine":"whoami /all","CurrentDirectory":"C:\\Users\\bob\\","User":"CORP\\bob","LogonGuid":"{a1b2c3d4-0000-0000-0000-000000000002}","LogonId":"0x3e7","TerminalSessionId":1,"IntegrityLevel":"High","Hashes":"SHA256=0000","ParentProcessGuid":"{a1b2c3d4-0000-0000-0000-000000000003}","ParentProcessId":1000,"ParentImage":"C:\\Windows\\System32\\cmd.exe","ParentCommandLine":"cmd.exe","ParentUser":"CORP\\bob"}}}"##;

const WINDOWS: &[Case] = &[
    hit(
        "evtx_dump Sysmon 1 through the Windows pipeline",
        WHOAMI,
        EVTX_WHOAMI,
        "EventID 1 and the Sysmon channel (added by the pipeline) and the rule's fields, flattened from Event.System/EventData",
    ),
    hit(
        "flat Sysmon 1 (Winlogbeat-like), en dash option",
        WHOAMI,
        r#"{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Image": "C:\\Tools\\WHOAMI.EXE", "CommandLine": "whoami \u2013all"}"#,
        "the same names flat; windash; ASCII case-insensitive endswith",
    ),
    miss(
        "process creation rule, wrong channel",
        WHOAMI,
        r#"{"EventID": 1, "Channel": "Security", "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"}"#,
        "the pipeline's Channel condition fails",
    ),
    miss(
        "process creation rule, wrong event id",
        WHOAMI,
        r#"{"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"}"#,
        "the pipeline's EventID condition fails",
    ),
    miss(
        "process creation rule, other command line",
        WHOAMI,
        r#"{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /user"}"#,
        "the rule's own selection fails",
    ),
    hit(
        "Defender: evtx_dump, Threat Name",
        DEFENDER,
        r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Windows Defender","Guid":"11CD958A-C507-4EF3-B3F2-5FD9DFBD2C78"}},"EventID":1116,"Level":3,"TimeCreated":{"#attributes":{"SystemTime":"2024-01-01T10:00:00.000000Z"}},"Channel":"Microsoft-Windows-Windows Defender/Operational","Computer":"WS01.corp.local"},"EventData":{"Product Name":"Microsoft Defender Antivirus","Product Version":"4.18.2301.6","Detection ID":"{00000000-0000-0000-0000-000000000000}","Detection Time":"2024-01-01T10:00:00.000Z","Threat ID":"2147894231","Threat Name":"HackTool:Win32/Mimikatz.D","Severity Name":"High","Category Name":"Tool","Path":"file:_C:\\tools\\mimikatz.exe","Process Name":"C:\\Windows\\explorer.exe","Detection User":"CORP\\bob","Action Name":"Not Applicable"}}}"##,
        "the pipeline maps ThreatName to `Threat Name` for service windefend and adds the Defender channel",
    ),
    hit(
        "Defender: flat event",
        DEFENDER,
        r#"{"EventID": 1116, "Channel": "Microsoft-Windows-Windows Defender/Operational", "Threat Name": "HackTool:Win32/Mimikatz.D"}"#,
        "same, flat",
    ),
    miss(
        "Defender: another threat",
        DEFENDER,
        r#"{"EventID": 1116, "Channel": "Microsoft-Windows-Windows Defender/Operational", "Threat Name": "Trojan:Win32/Wacatac"}"#,
        "the rule's selection fails",
    ),
    miss(
        "Defender: the right fields in another channel",
        DEFENDER,
        r#"{"EventID": 1116, "Channel": "Application", "Threat Name": "HackTool:Win32/Mimikatz.D"}"#,
        "the pipeline's Channel condition fails",
    ),
    hit(
        "evtx_dump Security 4624, EventID with attributes",
        NETWORK_LOGON,
        r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":{"#text":4624,"#attributes":{"Qualifiers":0}},"Channel":"Security","Computer":"DC01"},"EventData":{"TargetUserName":"bob","LogonType":3,"IpAddress":"203.0.113.5","IpPort":"50123"}}}"##,
        "an XML element's `#text` is the element's value; the pipeline adds Channel: Security",
    ),
    miss(
        "evtx_dump Security 4624 from a private address",
        NETWORK_LOGON,
        r##"{"Event":{"System":{"EventID":{"#text":4624,"#attributes":{"Qualifiers":0}},"Channel":"Security","Computer":"DC01"},"EventData":{"TargetUserName":"bob","LogonType":3,"IpAddress":"10.20.30.40","IpPort":"50123"}}}"##,
        "the cidr filter excludes it",
    ),
    miss(
        "evtx_dump Security 4624 without an address",
        NETWORK_LOGON,
        r##"{"Event":{"System":{"EventID":{"#text":4624},"Channel":"Security","Computer":"DC01"},"EventData":{"TargetUserName":"bob","LogonType":3,"IpAddress":"-","IpPort":"-"}}}"##,
        "the `-` filter excludes it",
    ),
    miss(
        "zeek rule on a Windows event with a matching field",
        ZEEK,
        r#"{"Event":{"System":{"EventID":22,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS01"},"EventData":{"QueryName":"evil.example","query":"evil.example"}}}"#,
        "a zeek rule needs events whose input declares product zeek; no pipeline maps it to Windows fields",
    ),
    miss(
        "zeek rule on a flat event with a matching field",
        ZEEK,
        r#"{"query": "evil.example", "EventID": 22}"#,
        "logsource routing, not the fields, decides",
    ),
];

// ------------------------------------------------------------------------------------------
// Running the tables

const SYNTHETIC: &[(&str, &[Case])] = &[
    ("escaping", ESCAPING),
    ("windash", WINDASH),
    ("base64", BASE64),
    ("cidr", CIDR),
    ("all and lists", ALL_AND_LISTS),
    ("keywords", KEYWORDS),
    ("null, empty, missing", NULL_EMPTY_MISSING),
    ("numbers", NUMBERS),
    ("unicode and spaces", UNICODE_AND_SPACES),
    ("conditions", CONDITIONS),
    ("pipeline", PIPELINE),
    ("dialect", DIALECT),
];

fn case_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", 0xCA5E_0000 + n)
}

/// A case's rule as a whole document, with `logsource: {product: test}` or, `routed`,
/// `{product: test, service: routed}`, which [`ROUTING`] turns into a condition.
fn synthetic_rule(n: usize, c: &Case, routed: bool) -> String {
    format!(
        "title: {}\nid: {}\nlogsource: {{product: test{}}}\ndetection: {}\n",
        serde_json::to_string(c.name).unwrap(),
        case_id(n),
        if routed { ", service: routed" } else { "" },
        c.rule
    )
}

/// Adds a condition that always holds to `service: routed` rules: kuzet then compiles their
/// logsource as a condition and routes them by the values they require, not by the event's
/// logsource class. Every synthetic case runs both ways.
const ROUTING: &str = "name: cases routing
transformations:
  - type: add_condition
    conditions:
      kz_never_present: null
    rule_conditions:
      - type: logsource
        product: test
        service: routed
";

/// Runs cases through kuzet; returns the failures, and each case's (compiled, reference)
/// answer (`None`: rejected).
fn run_kuzet(
    name: &str,
    cases: &[&Case],
    rules: &[String],
    labels: &[String],
    setup: Setup<'_>,
) -> (Vec<String>, Vec<Option<bool>>) {
    let kz = Kuzet::build(name, &Setup { rules, ..setup });
    let errors = kz.errors();
    let events: Vec<String> = cases.iter().map(|c| c.event.to_string()).collect();
    let (compiled, slow) = kz.run(&events);
    let mut failures = Vec::new();
    let mut answers = Vec::new();
    for (i, (c, label)) in cases.iter().zip(labels).enumerate() {
        // Not loaded (a YAML error cannot name the rule's id).
        let rejected = !compiled.contains_key(label);
        let (got_c, got_r) = match (compiled.get(label), slow.get(label)) {
            (Some(x), Some(y)) => (Some(x.contains(&i)), Some(y.contains(&i))),
            _ => (None, None),
        };
        let ok = match c.expect {
            Expect::Rejected => rejected && !errors.is_empty(),
            Expect::Match => !rejected && got_c == Some(true) && got_r == Some(true),
            Expect::NoMatch => !rejected && got_c == Some(false) && got_r == Some(false),
        };
        if !ok {
            let errs: Vec<&String> = errors
                .iter()
                .filter(|e| e.contains(label.as_str()))
                .collect();
            failures.push(format!(
                "{}: expected {:?} ({}); compiled {:?}, reference {:?}, errors {errs:?}\n  rule: {}\n  event: {}",
                c.name, c.expect, c.why, got_c, got_r, c.rule, c.event
            ));
        }
        answers.push(if rejected { None } else { got_c });
    }
    (failures, answers)
}

/// Zircolite types a column by the first non-null value (SEMANTICS.md 1.3): cases whose
/// events disagree on a field's type must not share a table. Greedy grouping.
fn oracle_groups(events: &[Value]) -> Vec<Vec<usize>> {
    fn kinds(v: &Value, prefix: &str, out: &mut Vec<(String, bool)>) {
        if let Value::Object(m) = v {
            for (k, x) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match x {
                    Value::Object(_) => kinds(x, &name, out),
                    Value::Null => {}
                    other => out.push((
                        name.to_ascii_lowercase(),
                        other.is_i64() || other.is_u64() || other.is_boolean(),
                    )),
                }
            }
        }
    }
    let mut groups: Vec<(BTreeMap<String, bool>, Vec<usize>)> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let mut k = Vec::new();
        kinds(ev, "", &mut k);
        let slot = groups
            .iter()
            .position(|(types, _)| k.iter().all(|(n, t)| types.get(n).is_none_or(|x| x == t)));
        let slot = slot.unwrap_or_else(|| {
            groups.push((BTreeMap::new(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].0.extend(k);
        groups[slot].1.push(i);
    }
    groups.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn synthetic_cases() {
    let cases: Vec<&Case> = SYNTHETIC.iter().flat_map(|(_, t)| t.iter()).collect();
    let rules: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(n, c)| synthetic_rule(n, c, false))
        .collect();
    let labels: Vec<String> = (0..cases.len()).map(case_id).collect();
    let pipelines = [PLACEHOLDERS.to_string(), ROUTING.to_string()];
    let setup = || Setup {
        rules: &[],
        pipelines: &pipelines,
        default_pipelines: false,
        class: Some(Logsource {
            product: Some("test".into()),
            ..Logsource::default()
        }),
    };
    let (mut failures, answers) = run_kuzet("cases", &cases, &rules, &labels, setup());
    // The same cases routed by value.
    let routed: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(n, c)| synthetic_rule(n, c, true))
        .collect();
    let (routed_failures, _) = run_kuzet("cases-routed", &cases, &routed, &labels, setup());
    failures.extend(
        routed_failures
            .into_iter()
            .map(|f| format!("(routed by value) {f}")),
    );

    // The reference: one oracle call per group of type-compatible events, in parallel.
    support::oracle_python();
    let events: Vec<Value> = cases
        .iter()
        .map(|c| serde_json::from_str(c.event).expect("case event is JSON"))
        .collect();
    let handles: Vec<_> = oracle_groups(&events)
        .into_iter()
        .map(|group| {
            let input = json!({
                "rules": group.iter().map(|&i| rules[i].clone()).collect::<Vec<_>>(),
                "events": group.iter().map(|&i| events[i].clone()).collect::<Vec<_>>(),
                "pipelines": [PLACEHOLDERS],
            });
            std::thread::spawn(move || (group, oracle(&input)))
        })
        .collect();
    for h in handles {
        let (group, doc) = h.join().expect("oracle thread");
        let (want, errors) = oracle_matches(&doc);
        for (pos, &i) in group.iter().enumerate() {
            let c = cases[i];
            let oracle_says = want.get(&labels[i]).map(|m| m.contains(&pos));
            let oracle_rejects = errors.iter().any(|e| e.contains(&labels[i]));
            let kuzet = answers[i];
            let fine = match (c.reference, c.expect) {
                (Ref::Agrees, Expect::Rejected) => oracle_rejects,
                (Ref::Agrees, _) => oracle_says == kuzet && kuzet.is_some(),
                (Ref::Differs(_), Expect::Rejected) => oracle_says.is_some(),
                // The other answer, or no answer: the reference refuses the rule.
                (Ref::Differs(_), _) => {
                    oracle_rejects || (oracle_says.is_some() && oracle_says == kuzet.map(|k| !k))
                }
            };
            if !fine {
                failures.push(format!(
                    "{}: the reference says {:?} (rejected: {oracle_rejects}), kuzet {:?}, case marked {:?}\n  rule: {}\n  event: {}\n  SQL: {}",
                    c.name,
                    oracle_says,
                    kuzet,
                    c.reference,
                    c.rule,
                    c.event,
                    doc["queries"].get(&labels[i]).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn windows_cases() {
    let cases: Vec<&Case> = WINDOWS.iter().collect();
    // One copy of each distinct rule; cases point at it by its id.
    let mut rules: Vec<String> = cases.iter().map(|c| c.rule.to_string()).collect();
    rules.sort();
    rules.dedup();
    let labels: Vec<String> = cases
        .iter()
        .map(|c| {
            c.rule
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .expect("Windows case rules have ids")
                .to_string()
        })
        .collect();
    let (failures, _) = run_kuzet(
        "windows",
        &cases,
        &rules,
        &labels,
        Setup {
            rules: &[],
            pipelines: &[],
            default_pipelines: true,
            class: None,
        },
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
