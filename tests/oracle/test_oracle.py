#!/usr/bin/env python3
"""Tests of kuzet's reference oracle, and a record of what pySigma 2.0.1 + the SQLite backend
2.1.1 do. Every expectation here was observed, not wished for: SEMANTICS.md explains them.

Run with the oracle's python:  "$(tests/oracle/setup.sh)" tests/oracle/test_oracle.py
"""

import base64
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import oracle  # noqa: E402


def run(rules, events, pipelines=None, **options):
    doc = {"rules": rules if isinstance(rules, list) else [rules], "events": events}
    if pipelines:
        doc["pipelines"] = pipelines
    if options:
        doc["options"] = options
    # Round-trip through JSON as the CLI does.
    return json.loads(json.dumps(oracle.run(json.loads(json.dumps(doc))), default=str))


def rule(detection, title="t"):
    return f"title: {title}\nlogsource: {{product: test}}\ndetection:\n{detection}\n"


def field_rule(selection, condition="sel"):
    """A rule with one selection given as a YAML flow mapping, e.g. "{a|contains: x}"."""
    return rule(f"  sel: {selection}\n  condition: {condition}")


class Detection:
    """Convert one rule and run it; the result's matches, SQL and error."""

    def __init__(self, rule_text, events, **options):
        out = run(rule_text, events, **options)
        self.out = out
        self.errors = out["errors"]
        self.sql = next(iter(out["queries"].values()), None)
        self.matches = out["results"][0]["matches"] if out["results"] else None
        self.error = self.errors[0]["error"] if self.errors else None


def values(field, *vals):
    return [{field: v} for v in vals]


def det(name, selection):
    return f"title: {name}\nname: {name}\nlogsource: {{product: test}}\ndetection:\n  sel: {selection}\n  condition: sel\n"


def cor(name, body):
    return f"title: {name}\nname: {name}\ncorrelation:\n{body}"


def result(out, key):
    for entry in out["results"]:
        if entry["rule"] == key:
            return entry
    raise AssertionError(f"no result for {key}: {out['errors']}")


def alerts(out, key):
    """(group, window_start, window_end, metric, events) of each alert of a correlation."""
    return [
        (a["group"], a["window_start"], a["window_end"], a["metric"], a["events"])
        for a in result(out, key)["alerts"]
    ]


RA, RB, RC = det("ra", "{k: a}"), det("rb", "{k: b}"), det("rc", "{k: c}")


# ---------------------------------------------------------------------------------------------
class PlainValues(unittest.TestCase):
    def test_equality_is_ascii_case_insensitive_and_exact(self):
        d = Detection(field_rule("{a: admin}"),
                      values("a", "admin", "ADMIN", "Admin ", "xadmin", None, 5) + [{}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='admin'")
        self.assertEqual(d.matches, [0, 1])

    def test_non_ascii_letters_are_not_case_folded(self):
        d = Detection(field_rule("{a: 'Ärger'}"), values("a", "Ärger", "ärger", "ÄRGER"))
        self.assertEqual(d.matches, [0, 2])  # only ASCII r/g/e fold; Ä != ä

    def test_empty_string_and_null(self):
        evs = values("a", "", "x", None) + [{}]
        self.assertEqual(Detection(field_rule("{a: ''}"), evs).matches, [0])
        d = Detection(field_rule("{a: null}"), evs)
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a IS NULL")
        self.assertEqual(d.matches, [2, 3])  # JSON null and absent are the same
        d = Detection(field_rule("{a: null}", "not sel"), evs)
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE NOT COALESCE((a IS NULL), 0)")
        self.assertEqual(d.matches, [0, 1])

    def test_list_is_or_and_map_is_and(self):
        d = Detection(rule("  sel:\n    a: 1\n    b: [1, 2]\n  condition: sel"),
                      [{"a": 1, "b": 2}, {"a": 1, "b": 3}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a=1 AND (b=1 OR b=2)")
        self.assertEqual(d.matches, [0])
        d = Detection(rule("  sel:\n    - a: 1\n    - b: 1\n  condition: sel"),
                      [{"a": 1}, {"b": 1}, {}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a=1 OR b=1")
        self.assertEqual(d.matches, [0, 1])

    def test_numbers_against_integer_column(self):
        # The first value is a JSON integer: INTEGER column; SQLite converts numeric-looking
        # text on insert, so "04624" is stored as 4624.
        d = Detection(field_rule("{a: 4624}"), values("a", 4624, "4624", "04624", 4624.0))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a=4624")
        self.assertEqual(d.matches, [0, 1, 2, 3])
        self.assertTrue(any("integer values in some events" in w for w in d.out["warnings"]))
        d = Detection(field_rule("{a: '4624'}"), values("a", 4624, 1))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='4624'")
        self.assertEqual(d.matches, [0])
        self.assertEqual(Detection(field_rule("{a: '04624'}"), values("a", 4624)).matches, [0])
        # Text in an INTEGER column compares BINARY (no NOCASE): 'TRUE' != 'true'.
        self.assertEqual(Detection(field_rule("{a: 'TRUE'}"), values("a", True, "true")).matches, [])

    def test_numbers_against_text_column(self):
        d = Detection(field_rule("{a: 4624}"), values("a", "4624", "04624", "4624.0"))
        self.assertEqual(d.matches, [0])  # the number is compared as the text '4624'
        d = Detection(field_rule("{a: 1.5}"), values("a", "1.5", "1.50", 1.5))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a=1.5")
        self.assertEqual(d.matches, [0, 2])

    def test_booleans(self):
        d = Detection(field_rule("{a: true}"), values("a", True, False, 1, "1", 0))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE (a='true' OR a=1)")
        self.assertEqual(d.matches, [0, 2, 3])
        d = Detection(field_rule("{a: true}"), values("a", "true", "TRUE", "1", "yes"))
        self.assertEqual(d.matches, [0, 1, 2])
        d = Detection(field_rule("{a: false}"), values("a", "false", "0", "no"))
        self.assertEqual(d.matches, [0, 1])

    def test_quote_in_value(self):
        d = Detection(field_rule("{a: \"it's\"}"), values("a", "it's", "IT'S", "its"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='it''s'")
        self.assertEqual(d.matches, [0, 1])


# ---------------------------------------------------------------------------------------------
class Wildcards(unittest.TestCase):
    def test_star_and_question_mark_become_like(self):
        d = Detection(field_rule("{a: 'ab?d*'}"),
                      values("a", "abcd", "ABxDzz", "abd", "abééd", "abéd", "abcdX"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE 'ab_d%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 1, 4, 5])  # ? is one character (not byte)

    def test_like_metacharacters_in_values_are_escaped(self):
        d = Detection(field_rule("{a: 'a%b_c'}"), values("a", "a%b_c", "axbyc", "A%B_C"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE 'a\\%b\\_c' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 2])

    def test_escaped_wildcards_are_literal(self):
        d = Detection(field_rule("{a: 'a\\*b'}"), values("a", "a*b", "axb", "a\\*b"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='a*b'")
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a: 'a\\?'}"), values("a", "a?", "ab"))
        self.assertEqual(d.matches, [0])

    def test_backslash_before_other_characters_is_literal(self):
        # A value with a backslash becomes LIKE (LIKE must escape it), still case-insensitive.
        d = Detection(field_rule("{a: 'C:\\Windows\\cmd.exe'}"),
                      values("a", "C:\\Windows\\cmd.exe", "c:\\windows\\CMD.EXE", "C:Windowscmd.exe"))
        self.assertEqual(
            d.sql, "SELECT * FROM logs WHERE a LIKE 'C:\\\\Windows\\\\cmd.exe' ESCAPE '\\'"
        )
        self.assertEqual(d.matches, [0, 1])

    def test_double_backslash_is_one_backslash_then_wildcard_is_live(self):
        d = Detection(field_rule("{a: 'a\\\\*b'}"), values("a", "a\\xb", "a\\b", "axb", "a\\\\xb"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE 'a\\\\%b' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 1, 3])

    def test_trailing_backslash_is_literal(self):
        d = Detection(field_rule("{a|endswith: 'dir\\'}"), values("a", "C:\\dir\\", "C:\\dir"))
        self.assertEqual(d.matches, [0])


# ---------------------------------------------------------------------------------------------
class StringModifiers(unittest.TestCase):
    def test_contains_startswith_endswith(self):
        d = Detection(field_rule("{a|contains: 'in'}"), values("a", "LOGIN", "x", 1234, "in"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE '%in%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 3])
        d = Detection(field_rule("{a|startswith: 'Ab'}"), values("a", "abc", "xab", "AB"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE 'Ab%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 2])
        d = Detection(field_rule("{a|endswith: '\\whoami.exe'}"),
                      values("a", "C:\\x\\WHOAMI.EXE", "whoami.exe", "C:\\whoami.exe "))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE '%\\\\whoami.exe' ESCAPE '\\'")
        self.assertEqual(d.matches, [0])

    def test_contains_empty_string_matches_every_present_value(self):
        d = Detection(field_rule("{a|contains: ''}"), values("a", "", "x") + [{}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE '%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 1])

    def test_contains_all(self):
        d = Detection(field_rule("{a|contains|all: [x, y]}"), values("a", "xy", "yx", "x"))
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '%x%' ESCAPE '\\' AND a LIKE '%y%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|all: [x, y]}"), values("a", "x", "xy"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='x' AND a='y'")
        self.assertEqual(d.matches, [])

    def test_cased_uses_glob(self):
        d = Detection(field_rule("{a|cased: 'AbC'}"), values("a", "AbC", "abc"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a GLOB 'AbC'")
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a|contains|cased: 'b[C'}"), values("a", "Ab[C", "ab[c", "AbC"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a GLOB '*b[[]C*'")
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a|cased: 'A*?'}"), values("a", "Ax", "A", "a1"))
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a|cased: 'A\\*'}"), values("a", "A*", "Ax"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a GLOB 'A[*]'")
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a|cased: 'C:\\Win'}"), values("a", "C:\\Win", "c:\\win"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a GLOB 'C:\\Win'")
        self.assertEqual(d.matches, [0])

    def test_exists(self):
        evs = values("a", "", "x", None) + [{}]
        d = Detection(field_rule("{a|exists: true}"), evs)
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a IS NOT NULL")
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|exists: false}"), evs)
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a IS NULL")
        self.assertEqual(d.matches, [2, 3])

    def test_base64(self):
        enc = base64.b64encode(b"ping").decode()
        d = Detection(field_rule("{a|base64: ping}"), values("a", enc, enc.lower(), enc + "x"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='cGluZw=='")
        self.assertEqual(d.matches, [0, 1])  # compared case-insensitively like any string
        d = Detection(field_rule("{a|base64|contains: ping}"), values("a", "xx" + enc, "x"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE '%cGluZw==%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0])

    def test_base64offset(self):
        def enc(s):
            return base64.b64encode(s.encode()).decode()

        d = Detection(
            field_rule("{a|base64offset|contains: ping}"),
            values("a", enc("ping"), enc("xping"), enc("xxping"), enc("x ping y"), enc("PING")),
        )
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '%cGluZ%' ESCAPE '\\' OR a LIKE '%Bpbm%' ESCAPE '\\' "
            "OR a LIKE '%waW5n%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1, 2, 3])

    def test_utf16_family(self):
        def wide(s, codec="utf-16le", bom=b""):
            return base64.b64encode(bom + s.encode(codec)).decode()

        d = Detection(field_rule("{a|wide|base64offset|contains: ping}"),
                      values("a", wide("ping"), wide("xping"), wide("xxping"), wide("pong")))
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '%cABpAG4AZw%' ESCAPE '\\' OR "
            "a LIKE '%AAaQBuAGcA%' ESCAPE '\\' OR a LIKE '%wAGkAbgBnA%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1, 2])
        d = Detection(field_rule("{a|utf16be|base64offset|contains: ping}"),
                      values("a", wide("ping", "utf-16be"), wide("ping")))
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a|utf16|base64offset|contains: ping}"),
                      values("a", wide("ping", bom=b"\xff\xfe"), wide("ping")))
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '%//5wAGkAbgBnA%' ESCAPE '\\' OR "
            "a LIKE '%/+cABpAG4AZw%' ESCAPE '\\' OR a LIKE '%//nAAaQBuAGcA%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0])

    def test_utf16le_is_rejected_by_pysigma(self):
        d = Detection(field_rule("{a|utf16le|base64offset|contains: ping}"), values("a", "x"))
        self.assertEqual(d.error, "SigmaModifierError: Unknown modifier 'utf16le'")
        self.assertEqual(d.errors[0]["stage"], "parse")

    def test_wide_without_base64_puts_nul_into_sql(self):
        d = Detection(field_rule("{a|wide: ping}"), values("a", "p\x00i\x00n\x00g\x00"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='p\x00i\x00n\x00g\x00'")
        self.assertEqual(d.errors[0]["stage"], "execute")
        self.assertIn("null character", d.error)

    def test_windash(self):
        d = Detection(
            field_rule("{a|windash|contains: ' -foo'}"),
            values("a", " -foo", " /foo", " \u2013foo", " \u2014foo", " \u2015foo",
                   " \u2010foo", "x-foo", " -FOO"),
        )
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '% -foo%' ESCAPE '\\' OR a LIKE '% /foo%' ESCAPE '\\' "
            "OR a LIKE '% \u2013foo%' ESCAPE '\\' OR a LIKE '% \u2014foo%' ESCAPE '\\' "
            "OR a LIKE '% \u2015foo%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1, 2, 3, 4, 7])

    def test_windash_only_expands_dashes_that_start_a_word(self):
        # \B[-/]\b: after a non-word character (or at the start), before a word character.
        d = Detection(field_rule("{a|windash: '-a-b /c x-y'}"),
                      values("a", "-a-b /c x-y", "/a-b -c x-y", "/a/b /c x-y", "-a-b /c x/y"))
        self.assertEqual(d.sql.count(" OR "), 24)  # 5 x 5 variants
        self.assertEqual(d.matches, [0, 1])

    def test_windash_at_most_three_dashes(self):
        d = Detection(field_rule("{a|windash: '-a -b -c -d'}"), values("a", "x"))
        self.assertTrue(d.error.startswith("SigmaModifiedError: windash modifier expands at most"))


# ---------------------------------------------------------------------------------------------
class Regex(unittest.TestCase):
    def test_re_is_a_case_sensitive_search(self):
        d = Detection(field_rule("{a|re: 'b.d'}"), values("a", "abcde", "ABCDE", "b\nd", 4624, ""))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP 'b.d'")
        self.assertEqual(d.matches, [0])

    def test_re_anchors_and_empty_values(self):
        d = Detection(field_rule("{a|re: '^$'}"), values("a", "", "x") + [{}])
        self.assertEqual(d.matches, [0])

    def test_re_flags(self):
        d = Detection(field_rule("{a|re|i: 'ABC'}"), values("a", "abc", "ABC", "ÄBC"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP '(?i)ABC'")
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|re|i: 'ä'}"), values("a", "Ä", "ä"))
        self.assertEqual(d.matches, [0, 1])  # regex case folding is Unicode
        d = Detection(field_rule("{a|re|m: '^x$'}"), values("a", "a\nx\nb", "x", "ax"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP '(?m)^x$'")
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|re|s: 'a.b'}"), values("a", "a\nb", "axb"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP '(?s)a.b'")
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|re|s|m|i: \"a'b\"}"), values("a", "A'B"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP '(?ims)a''b'")
        self.assertEqual(d.matches, [0])

    def test_re_with_contains_and_startswith(self):
        d = Detection(field_rule("{a|re|contains: 'x'}"), values("a", "axb"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP '.*x.*'")
        d = Detection(field_rule("{a|re|startswith: 'x|y'}"), values("a", "xa", "ay"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a REGEXP '(?:x|y).*'")
        self.assertEqual(d.matches, [0, 1])  # still a search: .* prefix is not added, ^ neither

    def test_python_and_re2_differ_on_dollar_and_digits(self):
        evs = values("a", "abc", "abc\n", "abc\nx")
        self.assertEqual(Detection(field_rule("{a|re: 'abc$'}"), evs).matches, [0, 1])
        self.assertEqual(
            Detection(field_rule("{a|re: 'abc$'}"), evs, regex_engine="re2").matches, [0]
        )
        evs = values("a", "\u0661\u0662\u0663", "123", "x")
        self.assertEqual(Detection(field_rule("{a|re: '\\d+'}"), evs).matches, [0, 1])
        self.assertEqual(
            Detection(field_rule("{a|re: '\\d+'}"), evs, regex_engine="re2").matches, [1]
        )

    def test_re2_validation_rejects_lookaround(self):
        d = Detection(field_rule("{a|re: '(?<=a)b'}"), values("a", "ab"))
        self.assertTrue(d.error.startswith("SigmaRegularExpressionError"))
        self.assertEqual(d.errors[0]["stage"], "parse")

    def test_re2_syntax_python_cannot_run_is_an_execute_error(self):
        d = Detection(field_rule("{a|re: '\\p{Greek}'}"), values("a", "\u03b1"))
        self.assertEqual(d.errors[0]["stage"], "execute")
        self.assertIn("bad escape", d.error)
        d = Detection(field_rule("{a|re: '\\p{Greek}'}"), values("a", "\u03b1"), regex_engine="re2")
        self.assertEqual(d.matches, [0])


# ---------------------------------------------------------------------------------------------
class OtherModifiers(unittest.TestCase):
    def test_cidr_v4(self):
        d = Detection(field_rule("{a|cidr: '192.168.0.0/23'}"),
                      values("a", "192.168.0.1", "192.168.1.255", "192.168.2.1", "192.168.01.1",
                             "192.168.0.1x", "192.168.10.1"))
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '192.168.0.%' ESCAPE '\\' OR "
            "a LIKE '192.168.1.%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1, 4])
        d = Detection(field_rule("{a|cidr: '10.0.0.0/8'}"), values("a", "10.1.2.3", "100.1.2.3", "10.x"))
        self.assertEqual(d.matches, [0, 2])
        d = Detection(field_rule("{a|cidr: '0.0.0.0/0'}"), values("a", "1.2.3.4", "::1", "hello"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE '%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 1, 2])
        d = Detection(field_rule("{a|cidr: '10.0.0.1/32'}"), values("a", "10.0.0.1", "10.0.0.10"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a='10.0.0.1'")
        self.assertEqual(d.matches, [0])

    def test_cidr_v6(self):
        d = Detection(field_rule("{a|cidr: '2001:db8::/32'}"),
                      values("a", "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "2001:0db8::1", "2001:db9::1"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a LIKE '2001:db8:%' ESCAPE '\\'")
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|cidr: 'fe80::/10'}"), values("a", "fe80::1", "febf::1", "fec0::1"))
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE 'fe8_:%' ESCAPE '\\' OR a LIKE 'fe9_:%' ESCAPE '\\' OR "
            "a LIKE 'fea_:%' ESCAPE '\\' OR a LIKE 'feb_:%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1])
        d = Detection(field_rule("{a|cidr: '::1/128'}"), values("a", "::1", "0:0:0:0:0:0:0:1"))
        self.assertEqual(d.matches, [0])

    def test_cidr_invalid(self):
        d = Detection(field_rule("{a|cidr: '10.0.0.1/24'}"), values("a", "10.0.0.1"))
        self.assertIn("has host bits set", d.error)

    def test_compare_on_integer_column_is_numeric(self):
        d = Detection(field_rule("{a|gt: 5}"), values("a", 10, 6, 5, 4, "x"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a > 5")
        self.assertEqual(d.matches, [0, 1, 4])  # text is greater than any number in SQLite
        d = Detection(field_rule("{a|lte: 5}"), values("a", 10, 5, -3))
        self.assertEqual(d.matches, [1, 2])

    def test_compare_on_text_column_is_lexicographic(self):
        d = Detection(field_rule("{a|gt: 5}"), values("a", "10", "6", "5", "4", "x", 10))
        self.assertEqual(d.matches, [1, 4])
        d = Detection(field_rule("{a|lt: 5}"), values("a", "10", "6", "5", "4", "x", 10, 4.5))
        self.assertEqual(d.matches, [0, 3, 5, 6])
        # A float's column is TEXT (Zircolite): 1.5 is the text '1.5', and '10' >= '1.5'.
        d = Detection(field_rule("{a|gte: 1.5}"), values("a", 1.5, 2, 1, "1.5", "2", "10"))
        self.assertEqual(d.matches, [0, 1, 3, 4, 5])

    def test_compare_needs_a_number(self):
        d = Detection(field_rule("{a|gte: '5'}"), values("a", 5))
        self.assertIn("incompatible to value type", d.error)

    def test_neq_negates_the_item(self):
        evs = values("a", "", "x", "X", None) + [{}]
        d = Detection(field_rule("{a|neq: x}"), evs)
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE NOT COALESCE((a='x'), 0)")
        self.assertEqual(d.matches, [0, 3, 4])  # missing field matches neq
        self.assertEqual(Detection(field_rule("{a: x}", "not sel"), evs).matches, [0, 3, 4])
        d = Detection(field_rule("{a|neq: [x, y]}"), values("a", "x", "y", "z"))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE NOT COALESCE((a='x' OR a='y'), 0)")
        self.assertEqual(d.matches, [2])
        d = Detection(field_rule("{a|neq: 5}"), values("a", 5, 6))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE NOT COALESCE((a=5), 0)")
        self.assertEqual(d.matches, [1])

    def test_fieldref(self):
        d = Detection(field_rule("{a|fieldref: b}"),
                      [{"a": "x", "b": "X"}, {"a": "x", "b": "y"}, {"a": "x"}, {"a": 1, "b": "1"},
                       {"a": None, "b": None}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a=b")
        self.assertEqual(d.matches, [0, 3])
        d = Detection(field_rule("{a|fieldref|contains: b}"),
                      [{"a": "xYz", "b": "y"}, {"a": "x%z", "b": "%"}, {"a": "xyz", "b": "%"},
                       {"a": "xyz", "b": ""}, {"a": "a\\b", "b": "\\"}])
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE a LIKE '%' || REPLACE(REPLACE(REPLACE(b, '\\', '\\\\'), "
            "'%', '\\%'), '_', '\\_') || '%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 1, 3, 4])
        d = Detection(field_rule("{a|fieldref|endswith: b}"), [{"a": "xyz", "b": "YZ"}, {"a": "xyz", "b": "y"}])
        self.assertEqual(d.matches, [0])
        d = Detection(field_rule("{a|fieldref|neq: b}"), [{"a": "x", "b": "x"}, {"a": "x", "b": "y"}, {"a": "x"}])
        self.assertEqual(d.matches, [1, 2])
        d = Detection(field_rule("{a|fieldref|cased: b}"), [{"a": "x", "b": "X"}])
        self.assertIn("incompatible", d.error)

    def test_expand_with_placeholder_pipeline(self):
        text = rule("  sel: {User|expand: '%admins%'}\n  sel2: {Image|endswith: cmd.exe}\n"
                    "  condition: sel and sel2")
        pipeline = ("name: p\nvars:\n  admins: [alice, 'bob*']\ntransformations:\n"
                    "  - type: value_placeholders\n    include: [admins]\n"
                    "  - type: field_name_mapping\n    mapping:\n      Image: process.executable\n")
        events = [{"User": "ALICE", "process": {"executable": "C:\\cmd.exe"}},
                  {"User": "bobby", "process": {"executable": "x\\cmd.exe"}},
                  {"User": "carol", "process": {"executable": "cmd.exe"}}]
        out = run(text, events, pipelines=[pipeline])
        self.assertEqual(
            out["queries"]["t"],
            "SELECT * FROM logs WHERE (User='alice' OR User LIKE 'bob%' ESCAPE '\\') AND "
            "`process.executable` LIKE '%cmd.exe' ESCAPE '\\'",
        )
        self.assertEqual(out["results"][0]["matches"], [0, 1])
        out = run(text, events)  # without a pipeline the placeholder cannot be converted
        self.assertEqual(out["errors"][0]["stage"], "convert")
        self.assertIn("unhandled placeholder 'admins'", out["errors"][0]["error"])

    def test_timestamp_part_modifier(self):
        d = Detection(field_rule("{a|minute: 5}"),
                      values("a", "2024-01-01T10:05:00Z", "2024-01-01 10:05:59", "2024-01-01T10:06:00Z",
                             1704103500))
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE CAST(strftime('%M', a) AS INTEGER)=5")
        self.assertEqual(d.matches, [0, 1])  # an epoch number is read as a Julian day


# ---------------------------------------------------------------------------------------------
class FieldsAndConditions(unittest.TestCase):
    def test_field_names_are_case_insensitive(self):
        d = Detection(field_rule("{EventID: 1}"), [{"eventid": 1}, {"EVENTID": 1}, {"EventID": 1}])
        self.assertEqual(d.matches, [0, 1, 2])
        self.assertTrue(any("case-insensitive" in w for w in d.out["warnings"]))

    def test_nested_events_flatten_to_dotted_names(self):
        d = Detection(field_rule("{Event.System.EventID: 1}"),
                      [{"Event": {"System": {"EventID": 1}}}, {"Event.System.EventID": 1},
                       {"Event": {"System": {"EventID": 2}}}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE `Event.System.EventID`=1")
        self.assertEqual(d.matches, [0, 1])

    def test_quoted_field_names(self):
        d = Detection(field_rule("{'Threat Name': x, 'order': y, 'a`b': z}"),
                      [{"Threat Name": "X", "order": "y", "a`b": "z"}, {"ThreatName": "x"}])
        self.assertEqual(
            d.sql, "SELECT * FROM logs WHERE `Threat Name`='x' AND `order`='y' AND `a``b`='z'"
        )
        self.assertEqual(d.matches, [0])

    def test_arrays_are_json_text(self):
        d = Detection(field_rule("{a|contains: '\"b\"'}"), [{"a": ["a", "b"]}, {"a": "b"}])
        self.assertEqual(d.matches, [0])
        self.assertTrue(any("array" in w for w in d.out["warnings"]))

    def test_one_of_all_of_any_of(self):
        evs = [{"a": 1, "b": 1}, {"b": 1}, {"c": 1}, {}]
        sels = "  sel1: {a: 1}\n  sel2: {b: 1}\n  other: {c: 1}\n"
        cases = {
            "1 of sel*": ("a=1 OR b=1", [0, 1]),
            "all of sel*": ("a=1 AND b=1", [0]),
            "any of sel*": ("a=1 OR b=1", [0, 1]),
            "1 of them": ("a=1 OR b=1 OR c=1", [0, 1, 2]),
            "all of them": ("a=1 AND b=1 AND c=1", []),
            "not 1 of sel*": ("NOT COALESCE((a=1 OR b=1), 0)", [2, 3]),
            "1 of sel* and not other": ("(a=1 OR b=1) AND (NOT COALESCE((c=1), 0))", [0, 1]),
        }
        for condition, (where, matches) in cases.items():
            d = Detection(rule(sels + f"  condition: {condition}"), evs)
            self.assertEqual(d.sql, "SELECT * FROM logs WHERE " + where, condition)
            self.assertEqual(d.matches, matches, condition)

    def test_them_skips_underscore_names(self):
        d = Detection(rule("  sel1: {a: 1}\n  _hidden: {b: 1}\n  filter_x: {c: 1}\n"
                           "  condition: 1 of them"), [{"a": 1}, {"b": 1}, {"c": 1}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE a=1 OR c=1")
        self.assertEqual(d.matches, [0, 2])

    def test_pipeline_table_state_is_not_supported(self):
        pipeline = "name: p\ntransformations:\n  - type: set_state\n    key: table\n    val: other\n"
        out = run(field_rule("{a: 1}"), [{"a": 1}], pipelines=[pipeline])
        self.assertEqual(out["queries"]["t"], "SELECT * FROM other WHERE a=1")
        self.assertEqual(out["errors"][0]["stage"], "execute")

    def test_condition_list(self):
        d = Detection(rule("  sel1: {a: 1}\n  sel2: {b: 1}\n  condition:\n    - sel1\n    - sel2"),
                      [{"a": 1}, {"b": 1}, {}])
        self.assertEqual(d.sql, ["SELECT * FROM logs WHERE a=1", "SELECT * FROM logs WHERE b=1"])
        self.assertEqual(d.matches, [0, 1])
        self.assertEqual(d.out["results"][0]["matches_per_condition"], [[0], [1]])

    def test_keywords_use_the_fulltext_column(self):
        d = Detection(rule("  keywords: [foo, 'b*r', 42]\n  condition: keywords"),
                      [{"m": "xFOOx"}, {"m": "b"}, {"x": "b", "y": "r"}, {"n": 42}, {"n": 142},
                       {"n": "42"}])
        self.assertEqual(
            d.sql,
            "SELECT * FROM logs WHERE __oracle_text LIKE '%foo%' ESCAPE '\\' OR "
            "__oracle_text LIKE '%b%r%' ESCAPE '\\' OR __oracle_text LIKE '%42%' ESCAPE '\\'",
        )
        self.assertEqual(d.matches, [0, 2, 3, 4, 5])  # 2: the wildcard spans two values
        d = Detection(rule("  keywords:\n    '|cased': Foo\n  condition: keywords"),
                      [{"m": "xFoo"}, {"m": "foo"}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE __oracle_text GLOB '*Foo*'")
        self.assertEqual(d.matches, [0])
        d = Detection(rule("  keywords:\n    '|re': 'fo+'\n  condition: keywords"),
                      [{"m": "xfoo"}, {"m": "x"}])
        self.assertEqual(d.sql, "SELECT * FROM logs WHERE __oracle_text REGEXP 'fo+'")
        self.assertEqual(d.matches, [0])
        d = Detection(rule("  keywords:\n    '|all': [foo, bar]\n  condition: keywords"),
                      [{"m": "foo bar"}, {"m": "foo"}, {"m": "bar", "n": "foo"}])
        self.assertEqual(d.matches, [0, 2])

    def test_keywords_are_rejected_by_the_default_backend(self):
        d = Detection(rule("  keywords: [foo]\n  condition: keywords"), [{"m": "foo"}], fulltext=False)
        self.assertEqual(d.errors[0]["stage"], "convert")
        self.assertIn("Keyword search requires fulltext_field", d.error)

    def test_filter_documents_apply_to_named_rules(self):
        flt = ("title: f\nfilter:\n  rules: [ra]\n  selection: {u: admin}\n  condition: not selection\n"
               "logsource: {product: test}\n")
        out = run([RA, flt], [{"k": "a", "u": "admin"}, {"k": "a", "u": "bob"}, {"k": "a"}])
        self.assertEqual(
            out["queries"]["ra"],
            "SELECT * FROM logs WHERE k='a' AND (NOT COALESCE((u='admin'), 0))",
        )
        self.assertEqual(result(out, "ra")["matches"], [1, 2])

    def test_errors_are_per_rule(self):
        bad = field_rule("{a|nosuchmodifier: x}")
        out = run([RA, bad, "title: [unclosed", RB], [{"k": "a"}, {"k": "b"}])
        self.assertEqual([r["rule"] for r in out["results"]], ["ra", "rb"])
        self.assertEqual([e["stage"] for e in out["errors"]], ["parse", "parse"])


# ---------------------------------------------------------------------------------------------
class Correlations(unittest.TestCase):
    def brute(self, condition="{gte: 3}", timespan="10s", group="[src]"):
        base = det("failed", "{msg|contains: 'Failed password'}")
        corr = cor("brute", f"  type: event_count\n  rules: [failed]\n  group-by: {group}\n"
                            f"  timespan: {timespan}\n  condition: {condition}\n")
        return [corr, base]  # correlation first: pySigma orders referenced rules first

    EVENTS = [{"msg": "Failed password for x", "src": s, "timestamp": t}
              for t, s in [(0, "A"), (5, "A"), (10, "A"), (11, "A"), (20, "a"), (21, "B"),
                           (30, "A"), (31, "A"), (40, "A")]] + [
        {"msg": "Failed password for x", "timestamp": 12}]

    def test_event_count_trailing_closed_window(self):
        out = run(self.brute(), self.EVENTS)
        self.assertEqual(result(out, "failed")["emitted"], False)
        self.assertEqual(result(out, "failed")["matches"], list(range(10)))
        self.assertEqual(alerts(out, "brute"), [
            ({"src": "a"}, 0.0, 10.0, 3, [0, 1, 2]),  # [t-10, t]: both ends included
            ({"src": "a"}, 1.0, 11.0, 3, [1, 2, 3]),
            ({"src": "a"}, 10.0, 20.0, 3, [2, 3, 4]),  # "a" and "A" are one group
            ({"src": "a"}, 30.0, 40.0, 3, [6, 7, 8]),
        ])
        self.assertEqual(result(out, "brute")["diagnostics"],
                         {"invalid_timestamp": 0, "missing_group_key": 1})
        self.assertTrue(out["queries"]["brute"].startswith("WITH sigma_"))
        self.assertIn("COUNT(*) OVER (PARTITION BY g0 ORDER BY ts RANGE BETWEEN 10 PRECEDING "
                      "AND CURRENT ROW)", out["queries"]["brute"])

    def test_event_count_conditions(self):
        evs = [{"msg": "Failed password", "h": h, "timestamp": t}
               for t, h in [(0, "x"), (1, "x"), (2, "x"), (10, "x"), (100, "y")]]
        expect = {
            "{lt: 2}": [({"h": "x"}, 1), ({"h": "x"}, 1), ({"h": "y"}, 1)],
            "{lte: 2}": [({"h": "x"}, 1), ({"h": "x"}, 2), ({"h": "x"}, 1), ({"h": "y"}, 1)],
            "{eq: 2}": [({"h": "x"}, 2)],
            "{neq: 2}": [({"h": "x"}, 1), ({"h": "x"}, 3), ({"h": "x"}, 1), ({"h": "y"}, 1)],
            "{gt: 2}": [({"h": "x"}, 3)],
            "{gte: 2.5}": [({"h": "x"}, 3)],
        }
        for condition, want in expect.items():
            out = run(self.brute(condition, "5s", "h"), evs)
            got = [(g, m) for g, _, _, m, _ in alerts(out, "brute")]
            self.assertEqual(got, want, condition)

    def test_ranges_are_rejected(self):
        out = run(self.brute("{gte: 2, lte: 3}"), self.EVENTS)
        self.assertEqual(out["errors"][0]["stage"], "parse")
        self.assertIn("exactly one condition item", out["errors"][0]["error"])

    def test_no_group_by_and_several_rules(self):
        corr = cor("ec", "  type: event_count\n  rules: [ra, rb]\n  timespan: 5s\n"
                         "  condition: {gte: 2}\n")
        out = run([RA, RB, corr], [{"k": "a", "timestamp": 0}, {"k": "b", "timestamp": 1},
                                   {"k": "c", "timestamp": 2}])
        self.assertEqual(alerts(out, "ec"), [({}, -4.0, 1.0, 2, [0, 1])])
        # One event matching two referenced rules counts once.
        r1, r2 = det("r1", "{k: a}"), det("r2", "{k|startswith: a}")
        corr = cor("ec", "  type: event_count\n  rules: [r1, r2]\n  timespan: 5s\n"
                         "  condition: {gte: 2}\n")
        self.assertEqual(alerts(run([r1, r2, corr], [{"k": "a", "timestamp": 0}]), "ec"), [])

    def test_value_count(self):
        corr = cor("vc", "  type: value_count\n  rules: [ra]\n  group-by: [g]\n  timespan: 10s\n"
                         "  condition: {gte: 2, field: u}\n")
        evs = [{"k": "a", "timestamp": t, "u": u, "g": 1}
               for t, u in [(0, "X"), (1, "x"), (2, "y"), (3, None), (4, "5"), (5, 5)]]
        self.assertEqual(alerts(run([RA, corr], evs), "vc"), [
            ({"g": 1}, -8.0, 2.0, 2, [0, 1, 2]),  # X and x are one value
            ({"g": 1}, -7.0, 3.0, 2, [0, 1, 2, 3]),  # an event without the field is evidence
            ({"g": 1}, -6.0, 4.0, 3, [0, 1, 2, 3, 4]),
            ({"g": 1}, -5.0, 5.0, 3, [0, 1, 2, 3, 4, 5]),  # 5 is stored as '5' (TEXT column)
        ])

    def test_value_count_field_list_is_unsupported(self):
        corr = cor("vcl", "  type: value_count\n  rules: [ra]\n  timespan: 1h\n"
                          "  condition: {gte: 2, field: [u, v]}\n")
        out = run([RA, corr], [{"k": "a", "timestamp": 0}])
        self.assertEqual(out["errors"][0]["stage"], "convert")
        self.assertIn("field list", out["errors"][0]["error"])

    def test_numeric_aggregates(self):
        evs = [{"k": "a", "timestamp": t, "v": v}
               for t, v in [(0, 1), (1, 2), (2, "3"), (3, "x"), (4, None), (5, 10), (20, 100)]]
        expect = {
            "value_sum": [1.0, 3.0, 6.0, 6.0, 6.0, 16.0, 100.0],
            "value_avg": [1.0, 1.5, 2.0, 2.0, 2.0, 4.0, 100.0],
            "value_median": [1.0, 1.5, 2.0, 2.0, 2.0, 2.5, 100.0],
            "value_percentile": [1.0, 1.9, 2.8, 2.8, 2.8, 7.9, 100.0],
        }
        for kind, want in expect.items():
            extra = ", percentile: 90" if kind == "value_percentile" else ""
            corr = cor("vs", f"  type: {kind}\n  rules: [ra]\n  timespan: 5s\n"
                             f"  condition: {{gte: 0, field: v{extra}}}\n")
            got = alerts(run([RA, corr], evs), "vs")
            self.assertEqual([round(m, 9) for _, _, _, m, _ in got], want, kind)
            self.assertEqual([e for *_, e in got][-2:], [[0, 1, 2, 5], [6]], kind)

    def test_percentile_needs_percentile_key(self):
        corr = cor("vp", "  type: value_percentile\n  rules: [ra]\n  timespan: 10s\n"
                         "  condition: {gte: 1, field: v}\n")
        out = run([RA, corr], [{"k": "a", "timestamp": 0, "v": 1}])
        self.assertIn("needs a percentile between 0 and 100", out["errors"][0]["error"])

    def test_temporal(self):
        corr = cor("tp", "  type: temporal\n  rules: [ra, rb]\n  timespan: 10s\n")
        evs = [{"k": k, "timestamp": t} for t, k in
               [(0, "b"), (5, "a"), (30, "a"), (41, "b"), (50, "a"), (50, "b")]]
        self.assertEqual(alerts(run([RA, RB, corr], evs), "tp"), [
            ({}, -5.0, 5.0, 2, [0, 1]),
            ({}, 40.0, 50.0, 2, [3, 4, 5]),
        ])
        # One event matching both rules satisfies both.
        r1, r2 = det("r1", "{k: a}"), det("r2", "{k|startswith: a}")
        corr = cor("tt", "  type: temporal\n  rules: [r1, r2]\n  timespan: 10s\n")
        self.assertEqual(alerts(run([r1, r2, corr], [{"k": "a", "timestamp": 0}]), "tt"),
                         [({}, -10.0, 0.0, 2, [0])])

    def test_temporal_count_condition(self):
        corr = cor("t2", "  type: temporal\n  rules: [ra, rb, rc]\n  timespan: 10s\n"
                         "  condition: {gte: 2}\n")
        evs = [{"k": "c", "timestamp": 0}, {"k": "a", "timestamp": 1}, {"k": "a", "timestamp": 2}]
        self.assertEqual(alerts(run([RA, RB, RC, corr], evs), "t2"), [
            ({}, -9.0, 1.0, 2, [0, 1]), ({}, -8.0, 2.0, 2, [0, 1, 2])])

    def test_temporal_with_aliases(self):
        corr = cor("al", "  type: temporal\n  rules: [ra, rb]\n  group-by: [ip]\n  timespan: 10s\n"
                         "  aliases:\n    ip:\n      ra: src\n      rb: dst\n")
        evs = [{"k": "a", "timestamp": 0, "src": "1.1.1.1", "dst": "9"},
               {"k": "b", "timestamp": 1, "dst": "1.1.1.1", "src": "8"},
               {"k": "b", "timestamp": 2, "dst": "2.2.2.2"}]
        self.assertEqual(alerts(run([RA, RB, corr], evs), "al"),
                         [({"ip": "1.1.1.1"}, -9.0, 1.0, 2, [0, 1])])

    def test_temporal_ordered(self):
        corr = cor("to", "  type: temporal_ordered\n  rules: [ra, rb]\n  timespan: 10s\n")
        evs = [{"k": k, "timestamp": t} for t, k in
               [(0, "b"), (5, "a"), (30, "a"), (40, "b"), (50, "a"), (50, "b"), (60, "b"),
                (61, "a"), (62, "b")]]
        self.assertEqual(alerts(run([RA, RB, corr], evs), "to"), [
            ({}, 30.0, 40.0, 2, [2, 3]),
            ({}, 50.0, 60.0, 2, [4, 6]),  # a@50,b@50 is no order; evidence: the chosen ones
            ({}, 52.0, 62.0, 2, [7, 8]),
        ])

    def test_temporal_ordered_equal_and_rounded_times_are_no_order(self):
        corr = cor("to", "  type: temporal_ordered\n  rules: [ra, rb]\n  timespan: 10s\n")
        for tb, fires in [(0, False), (0.0004, False), (0.001, True)]:
            evs = [{"k": "a", "timestamp": 0}, {"k": "b", "timestamp": tb}]
            self.assertEqual(bool(alerts(run([RA, RB, corr], evs), "to")), fires, tb)

    def test_temporal_ordered_partial_count(self):
        corr = cor("to2", "  type: temporal_ordered\n  rules: [ra, rb, rc]\n  timespan: 10s\n"
                          "  condition: {gte: 2}\n")
        evs = [{"k": "c", "timestamp": 0}, {"k": "a", "timestamp": 1}, {"k": "b", "timestamp": 2}]
        # The metric counts all rules seen (3); the evidence is the ordered pair.
        self.assertEqual(alerts(run([RA, RB, RC, corr], evs), "to2"), [({}, -8.0, 2.0, 3, [1, 2])])

    def test_extended_conditions(self):
        corr = cor("ext", "  type: temporal\n  rules: [ra, rb]\n  timespan: 5s\n"
                          "  condition: ra and not rb\n")
        evs = [{"k": "a", "timestamp": 0}, {"k": "b", "timestamp": 3}, {"k": "a", "timestamp": 20},
               {"k": "a", "timestamp": 40}, {"k": "b", "timestamp": 46}]
        out = run([RA, RB, corr], evs)
        # Absence looks forward: [t, t+5], reported at t+5, only up to the latest event time.
        self.assertEqual(alerts(out, "ext"), [({}, 20.0, 25.0, 1, [2]), ({}, 40.0, 45.0, 1, [3])])
        self.assertEqual(result(out, "ext")["diagnostics"],
                         {"invalid_timestamp": 0, "incomplete_window": 0})
        corr = cor("ext2", "  type: temporal\n  timespan: 5s\n  condition: ra or rb\n")
        out = run([RA, RB, corr], [{"k": "a", "timestamp": 0}, {"k": "b", "timestamp": 3}])
        self.assertEqual(alerts(out, "ext2"), [({}, -5.0, 0.0, 1, [0]), ({}, -2.0, 3.0, 2, [0, 1])])
        corr = cor("ext3", "  type: temporal_ordered\n  rules: [ra, rb, rc]\n  timespan: 10s\n"
                           "  condition: ra and rb and rc\n")
        evs = [{"k": "a", "timestamp": 0}, {"k": "c", "timestamp": 1}, {"k": "b", "timestamp": 2},
               {"k": "c", "timestamp": 3}]
        self.assertEqual(alerts(run([RA, RB, RC, corr], evs), "ext3"),
                         [({}, -7.0, 3.0, 3, [0, 2, 3])])

    def test_absence_horizon(self):
        corr = cor("n", "  type: temporal\n  rules: [ra, rb]\n  timespan: 5s\n"
                        "  condition: ra and not rb\n")
        evs = [{"k": "a", "timestamp": 0}, {"k": "a", "timestamp": 10}, {"k": "c", "timestamp": 12}]
        out = run([RA, RB, corr], evs)
        self.assertEqual(alerts(out, "n"), [({}, 0.0, 5.0, 1, [0])])
        self.assertEqual(result(out, "n")["diagnostics"]["incomplete_window"], 1)
        out = run([RA, RB, corr], evs, observation_end=100)
        self.assertEqual(alerts(out, "n"), [({}, 0.0, 5.0, 1, [0]), ({}, 10.0, 15.0, 1, [1])])

    def test_pure_absence_is_scoped_by_every_event(self):
        corr = cor("n", "  type: temporal\n  rules: [rb]\n  group-by: [h]\n  timespan: 5s\n"
                        "  condition: not rb\n")
        evs = [{"k": "a", "timestamp": 0, "h": "x"}, {"k": "b", "timestamp": 2, "h": "x"},
               {"k": "a", "timestamp": 20, "h": "y"}, {"k": "z", "timestamp": 40, "h": "z"},
               {"k": "z", "timestamp": 41}]
        self.assertEqual(alerts(run([RA, RB, corr], evs), "n"), [({"h": "y"}, 20.0, 25.0, 0, [2])])

    def test_chains(self):
        inner = cor("inner", "  type: event_count\n  rules: [ra]\n  group-by: [u]\n  timespan: 10s\n"
                             "  condition: {gte: 2}\n")
        outer = cor("outer", "  type: event_count\n  rules: [inner]\n  timespan: 100s\n"
                             "  condition: {gte: 2}\n")
        evs = [{"k": "a", "timestamp": t, "u": u, "h": h}
               for t, u, h in [(0, "p", "h1"), (1, "p", "h2"), (2, "q", "h1"), (3, "q", "h1"),
                               (50, "p", "h1")]]
        out = run([outer, inner, RA], evs)
        self.assertEqual(result(out, "inner")["emitted"], False)
        self.assertEqual(alerts(out, "inner"), [({"u": "p"}, -9.0, 1.0, 2, [0, 1]),
                                                ({"u": "q"}, -7.0, 3.0, 2, [2, 3])])
        self.assertEqual(alerts(out, "outer"), [({}, -97.0, 3.0, 2, [0, 1, 2, 3])])
        self.assertEqual(len(result(out, "outer")["alerts"][0]["child_alerts"]), 2)
        # A parent group-by field the child does not group by comes from the child's evidence:
        # a child alert whose events carry two values counts in both groups.
        outer = cor("outer", "  type: event_count\n  rules: [inner]\n  group-by: [h]\n"
                             "  timespan: 100s\n  condition: {gte: 1}\n")
        self.assertEqual(alerts(run([outer, inner, RA], evs), "outer"), [
            ({"h": "h1"}, -99.0, 1.0, 1, [0, 1]),
            ({"h": "h2"}, -99.0, 1.0, 1, [0, 1]),
            ({"h": "h1"}, -97.0, 3.0, 2, [0, 1, 2, 3]),
        ])
        # A parent may aggregate the child's metric by its type name.
        outer = cor("outer", "  type: value_sum\n  rules: [inner]\n  timespan: 100s\n"
                             "  condition: {gte: 1, field: event_count}\n")
        evs = [{"k": "a", "timestamp": t, "u": u} for t, u in [(0, "p"), (1, "p"), (2, "p"),
                                                                (3, "q"), (4, "q")]]
        self.assertEqual([m for *_, m, _ in alerts(run([outer, inner, RA], evs), "outer")],
                         [2.0, 5.0, 7.0])

    def test_generate_emits_referenced_rules(self):
        corr = cor("c", "  type: event_count\n  rules: [ra]\n  generate: true\n  timespan: 10s\n"
                        "  condition: {gte: 2}\n")
        out = run([corr, RA], [{"k": "a", "timestamp": 0}, {"k": "a", "timestamp": 1}])
        self.assertEqual(result(out, "ra")["emitted"], True)
        self.assertEqual(out["queries"]["ra"], "SELECT * FROM logs WHERE k='a'")

    def test_reference_by_id_and_missing_reference(self):
        base = ("title: ra\nid: 5f0f6a63-0000-4000-8000-000000000001\nlogsource: {product: test}\n"
                "detection:\n  sel: {k: a}\n  condition: sel\n")
        corr = cor("byid", "  type: event_count\n  rules: [5f0f6a63-0000-4000-8000-000000000001]\n"
                           "  timespan: 1h\n  condition: {gte: 2}\n")
        evs = [{"k": "a", "timestamp": 0}, {"k": "a", "timestamp": 3600},
               {"k": "a", "timestamp": 7201}]
        self.assertEqual(alerts(run([base, corr], evs), "byid"), [({}, 0.0, 3600.0, 2, [0, 1])])
        corr = cor("bad", "  type: event_count\n  rules: [nope]\n  timespan: 1h\n"
                          "  condition: {gte: 2}\n")
        out = run([corr, RA], [{"k": "a", "timestamp": 0}])
        self.assertEqual(out["errors"][0]["stage"], "reference")
        self.assertEqual(result(out, "ra")["matches"], [0])

    def test_correlation_over_a_failed_rule_is_a_convert_error(self):
        kw = ("title: kw\nname: kw\nlogsource: {product: test}\ndetection:\n  keywords: [boom]\n"
              "  condition: keywords\n")
        corr = cor("ec", "  type: event_count\n  rules: [kw]\n  timespan: 10s\n  condition: {gte: 1}\n")
        out = run([kw, corr], [{"m": "boom", "timestamp": 0}], fulltext=False)
        self.assertEqual([(e["rule"], e["stage"]) for e in out["errors"]],
                         [("kw", "convert"), ("ec", "convert")])
        self.assertIn("references 'kw'", out["errors"][1]["error"])

    def test_timespan_units(self):
        seconds = {"30s": 30, "2m": 120, "1h": 3600, "1d": 86400, "1w": 604800,
                   "1M": 2629746, "1y": 31556952}
        for spec, span in seconds.items():
            corr = cor("un", f"  type: event_count\n  rules: [ra]\n  timespan: {spec}\n"
                             "  condition: {gte: 2}\n")
            got = alerts(run([RA, corr], [{"k": "a", "timestamp": 0}, {"k": "a", "timestamp": 60}]),
                         "un")
            want = [({}, 60.0 - span, 60.0, 2, [0, 1])] if span >= 60 else []
            self.assertEqual(got, want, spec)
        for spec in ["0s", "1.5h", "10", "1H", "1ms"]:
            corr = cor("un", f"  type: event_count\n  rules: [ra]\n  timespan: {spec}\n"
                             "  condition: {gte: 2}\n")
            out = run([RA, corr], [{"k": "a", "timestamp": 0}])
            self.assertEqual(out["errors"][0]["stage"], "parse", spec)
            self.assertIn("SigmaTimespanError", out["errors"][0]["error"], spec)

    def test_timestamps(self):
        corr = cor("ec", "  type: event_count\n  rules: [ra]\n  timespan: 1s\n  condition: {gte: 2}\n")
        evs = [{"k": "a", "timestamp": "2024-01-01T00:00:00.0004Z"},
               {"k": "a", "timestamp": "2024-01-01T01:00:01.0004+01:00"},
               {"k": "a"}, {"k": "a", "timestamp": "garbage"},
               {"k": "a", "timestamp": 1704067201.0009}]
        out = run([RA, corr], evs)
        self.assertEqual(alerts(out, "ec"), [
            ({}, 1704067200.0, 1704067201.0, 2, [0, 1]),  # times are rounded to milliseconds
            ({}, 1704067200.001, 1704067201.001, 2, [1, 4]),
        ])
        self.assertEqual(result(out, "ec")["diagnostics"]["invalid_timestamp"], 2)
        self.assertEqual(result(out, "ec")["alerts"][0]["window_end_iso"], "2024-01-01T00:00:01.000Z")
        out = run([RA, corr], [{"k": "a", "t": 1000}, {"k": "a", "t": 1500}],
                  timestamp_field="t", timestamp_unit="ms")
        self.assertEqual(alerts(out, "ec"), [({}, 0.5, 1.5, 2, [0, 1])])

    def test_keyword_rules_in_correlations(self):
        kw = "title: kw\nname: kw\nlogsource: {product: test}\ndetection:\n  keywords: [boom]\n  condition: keywords\n"
        corr = cor("ec", "  type: event_count\n  rules: [kw]\n  timespan: 10s\n  condition: {gte: 2}\n")
        out = run([kw, corr], [{"m": "BOOM", "timestamp": 0}, {"m": "boom!", "timestamp": 1}])
        self.assertEqual(alerts(out, "ec"), [({}, -9.0, 1.0, 2, [0, 1])])

    def test_standalone_sql_agrees_with_the_plan(self):
        out = run(self.brute(), self.EVENTS, check_correlation_sql=True)
        entry = result(out, "brute")
        rows = entry["sql_rows"]
        self.assertEqual(len(rows), len(entry["alerts"]))
        for row, alert in zip(rows, entry["alerts"]):
            self.assertEqual(json.loads(row["group_keys"]), alert["group"])
            self.assertEqual((row["window_start"], row["window_end"], row["metric_value"]),
                             (alert["window_start"], alert["window_end"], alert["metric"]))
            self.assertEqual(sorted(int(i.split(":")[1]) for i in json.loads(row["event_ids"])),
                             alert["events"])


# ---------------------------------------------------------------------------------------------
class Cli(unittest.TestCase):
    def call(self, text):
        proc = subprocess.run([sys.executable, os.path.join(HERE, "oracle.py")], input=text,
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, json.loads(proc.stdout)

    def test_stdin_stdout(self):
        doc = {"rules": [RA], "events": [{"k": "a"}, {"k": "b"}]}
        code, out = self.call(json.dumps(doc))
        self.assertEqual(code, 0)
        self.assertEqual(out["results"][0]["matches"], [0])
        self.assertEqual(out["versions"]["pysigma"], "2.0.1")
        self.assertEqual(out["versions"]["pysigma-backend-sqlite"], "2.1.1")

    def test_bad_input_is_fatal(self):
        self.assertEqual(self.call("not json")[0], 2)
        code, out = self.call(json.dumps({"rules": [], "events": [{"rowid": 1}]}))
        self.assertEqual(code, 2)
        self.assertIn("reserved", out["fatal"])
        code, out = self.call(json.dumps({"rules": [], "events": [{"a": 1, "A": 2}]}))
        self.assertEqual(code, 2)
        self.assertIn("differ only in case", out["fatal"])


if __name__ == "__main__":
    unittest.main(verbosity=1)
