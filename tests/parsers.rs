//! Behaviour tests of stage 2 (frame → event) through the public API, as data.
//!
//! Where things live:
//!
//! | what                                                           | where                   |
//! |----------------------------------------------------------------|-------------------------|
//! | the harness: parse one line, render it like `kuzet parse`      | `parsers/support.rs`    |
//! | one table of cases per wire format (RFC 5424, 3164, JSON, …)   | this file               |
//! | every case again with its names interned, in `FieldMode::Known` | this file, at the end   |
//! | CRLF through the file reader; JSON nesting depth               | this file, at the end   |
//! | sample files written the way real collectors write them        | `parsers/collectors.rs`, `data/collectors/` |
//! | property tests (no panics, round trips)                        | `parsers/props.rs`      |
//!
//! A case is one input line, the input's format override (an `InputFormat` name, with
//! `-no-payload` to turn payload parsing off), zone and reference time, the fields expected
//! (name, value as JSON text, exactly as `kuzet parse` prints it) and the error kind
//! expected. Pseudo-fields check what the JSON output does not show: `$time` (the event
//! time, or `null`), `$format` and `$payload` (format names, or `null`). The value
//! [`ABSENT`] asserts that a field is missing. `.exact()` asserts there are no other fields;
//! `.raw_only()` asserts the event is just `message` = the whole frame (a fatal error).
//!
//! Every table runs to the end and reports all failing cases at once. A bug found by a
//! property test becomes a named case here.

#[path = "parsers/collectors.rs"]
mod collectors;
#[path = "parsers/props.rs"]
mod props;
#[path = "parsers/support.rs"]
mod support;

use support::{Case, check_table, parse_with, ts};

/// Marks a field that must be missing.
pub const ABSENT: &str = "<absent>";

/// The default reference time (receive time) of a case: the year rule resolves year-less
/// stamps against it.
pub const REF: &str = "2024-03-10T12:00:00Z";

const fn case(
    name: &'static str,
    line: &'static str,
    fields: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        name,
        line,
        format: "auto",
        tz: "UTC",
        reference: REF,
        fields,
        error: None,
        exact: false,
        raw_only: false,
    }
}

// ---------------------------------------------------------------------------------------
// RFC 5424
// ---------------------------------------------------------------------------------------

static RFC5424: &[Case] = &[
    // RFC 5424 §6.5, example 1: BOM before MSG, no PROCID, no SD.
    case(
        "rfc_example_1",
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
        &[
            ("facility", "4"),
            ("severity", "2"),
            ("timestamp", r#""2003-10-11T22:14:15.003Z""#),
            ("hostname", r#""mymachine.example.com""#),
            ("appname", r#""su""#),
            ("msgid", r#""ID47""#),
            ("message", r#""'su root' failed for lonvick on /dev/pts/8""#),
            ("$time", r#""2003-10-11T22:14:15.003Z""#),
            ("$format", r#""rfc5424""#),
            ("$payload", "null"),
        ],
    )
    .exact(),
    // Example 2: microseconds and a negative offset; no MSGID.
    case(
        "rfc_example_2",
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        &[
            ("facility", "20"),
            ("severity", "5"),
            ("timestamp", r#""2003-08-24T12:14:15.000003Z""#),
            ("hostname", r#""192.0.2.1""#),
            ("appname", r#""myproc""#),
            ("procid", r#""8710""#),
            ("message", r#""%% It's time to make the do-nuts.""#),
        ],
    )
    .exact(),
    // Example 3: one SD element with three params.
    case(
        "rfc_example_3_sd",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
        &[
            ("appname", r#""evntslog""#),
            ("exampleSDID@32473.iut", r#""3""#),
            ("exampleSDID@32473.eventSource", r#""Application""#),
            ("exampleSDID@32473.eventID", r#""1011""#),
            ("message", r#""An application event log entry...""#),
        ],
    ),
    // Example 4: two SD elements and no MSG at all.
    case(
        "rfc_example_4_two_sd_elements_no_msg",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        &[
            ("exampleSDID@32473.eventID", r#""1011""#),
            ("examplePriority@32473.class", r#""high""#),
            ("message", ABSENT),
        ],
    ),
    case(
        "every_header_field_nil",
        "<0>1 - - - - - -",
        &[
            ("facility", "0"),
            ("severity", "0"),
            ("$time", "null"),
            ("$format", r#""rfc5424""#),
        ],
    )
    .exact(),
    case(
        "nil_timestamp",
        "<14>1 - host app 1 ID - msg",
        &[
            ("timestamp", ABSENT),
            ("$time", "null"),
            ("hostname", r#""host""#),
            ("message", r#""msg""#),
        ],
    ),
    case(
        "nil_hostname",
        "<14>1 2024-03-10T12:00:00Z - app 1 ID - msg",
        &[
            ("hostname", ABSENT),
            ("appname", r#""app""#),
            ("procid", r#""1""#),
            ("msgid", r#""ID""#),
        ],
    ),
    case(
        "nil_appname",
        "<14>1 2024-03-10T12:00:00Z host - 1 ID - msg",
        &[
            ("hostname", r#""host""#),
            ("appname", ABSENT),
            ("procid", r#""1""#),
        ],
    ),
    case(
        "nil_procid",
        "<14>1 2024-03-10T12:00:00Z host app - ID - msg",
        &[
            ("appname", r#""app""#),
            ("procid", ABSENT),
            ("msgid", r#""ID""#),
        ],
    ),
    case(
        "nil_msgid",
        "<14>1 2024-03-10T12:00:00Z host app 1 - - msg",
        &[
            ("procid", r#""1""#),
            ("msgid", ABSENT),
            ("message", r#""msg""#),
        ],
    ),
    case(
        "nil_sd_then_msg",
        "<14>1 2024-03-10T12:00:00Z host app 1 ID - msg with  two spaces",
        &[("message", r#""msg with  two spaces""#)],
    ),
    case(
        "nil_sd_no_msg",
        "<14>1 2024-03-10T12:00:00Z host app 1 ID -",
        &[("message", ABSENT), ("msgid", r#""ID""#)],
    ),
    case(
        "empty_msg_after_space",
        "<14>1 2024-03-10T12:00:00Z host app 1 ID - ",
        &[("message", r#""""#)],
    ),
    case(
        "bom_only_msg",
        "<14>1 2024-03-10T12:00:00Z host app 1 ID - \u{feff}",
        &[("message", r#""""#)],
    ),
    // §6.3.3: inside PARAM-VALUE only `"`, `\` and `]` are escaped; any other backslash is
    // kept as it is.
    case(
        "sd_escapes",
        r#"<14>1 2024-03-10T12:00:00Z host app - - [x@1 q="say \"hi\"" b="back\\slash" r="br\]acket" o="keep\n\t\x" t="trail\\"] msg"#,
        &[
            ("x@1.q", r#""say \"hi\"""#),
            ("x@1.b", r#""back\\slash""#),
            ("x@1.r", r#""br]acket""#),
            ("x@1.o", r#""keep\\n\\t\\x""#),
            ("x@1.t", r#""trail\\""#),
            ("message", r#""msg""#),
        ],
    ),
    case(
        "sd_unescaped_bracket_and_utf8_in_value",
        "<14>1 2024-03-10T12:00:00Z host app - - [x@1 a=\"[a]\" u=\"Алматы café\"] msg",
        &[
            ("x@1.a", r#""[a]""#),
            ("x@1.u", r#""Алматы café""#),
        ],
    ),
    case(
        "sd_empty_value",
        "<14>1 2024-03-10T12:00:00Z host app - - [x@1 e=\"\"] msg",
        &[("x@1.e", r#""""#), ("message", r#""msg""#)],
    ),
    case(
        "sd_element_without_params",
        "<14>1 2024-03-10T12:00:00Z host app - - [timeQuality][meta sequenceId=\"5\"] msg",
        &[("meta.sequenceId", r#""5""#), ("message", r#""msg""#)],
    ),
    case(
        "sd_repeated_param_is_multi_valued",
        "<14>1 2024-03-10T12:00:00Z host app - - [origin ip=\"192.0.2.1\" ip=\"192.0.2.2\" software=\"rsyslogd\"] msg",
        &[
            ("origin.ip", r#"["192.0.2.1","192.0.2.2"]"#),
            ("origin.software", r#""rsyslogd""#),
        ],
    ),
    case(
        "sd_repeated_element",
        "<14>1 2024-03-10T12:00:00Z host app - - [a x=\"1\"][a x=\"2\"] msg",
        &[("a.x", r#"["1","2"]"#)],
    ),
    case(
        "sd_meta_sequence_and_origin",
        "<14>1 2024-03-10T12:00:00Z host app - - [meta sequenceId=\"1\" sysUpTime=\"37\"][origin ip=\"192.0.2.1\"] msg",
        &[
            ("meta.sequenceId", r#""1""#),
            ("meta.sysUpTime", r#""37""#),
            ("origin.ip", r#""192.0.2.1""#),
        ],
    ),
    case(
        "ts_offset_plus",
        "<14>1 2024-03-10T17:00:00+05:00 h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00Z""#)],
    ),
    case(
        "ts_offset_quarter_hour",
        "<14>1 2024-03-10T17:45:00+05:45 h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00Z""#)],
    ),
    case(
        "ts_z_no_fraction",
        "<14>1 2024-03-10T12:00:00Z h a - - - m",
        &[
            ("timestamp", r#""2024-03-10T12:00:00Z""#),
            ("$time", r#""2024-03-10T12:00:00Z""#),
        ],
    ),
    case(
        "ts_fraction_1_digit",
        "<14>1 2024-03-10T12:00:00.1Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.100Z""#)],
    ),
    case(
        "ts_fraction_2_digits",
        "<14>1 2024-03-10T12:00:00.12Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.120Z""#)],
    ),
    case(
        "ts_fraction_3_digits",
        "<14>1 2024-03-10T12:00:00.123Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.123Z""#)],
    ),
    case(
        "ts_fraction_4_digits",
        "<14>1 2024-03-10T12:00:00.1234Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.123400Z""#)],
    ),
    case(
        "ts_fraction_5_digits",
        "<14>1 2024-03-10T12:00:00.12345Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.123450Z""#)],
    ),
    case(
        "ts_fraction_6_digits",
        "<14>1 2024-03-10T12:00:00.123456+00:00 h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.123456Z""#)],
    ),
    case(
        "ts_fraction_7_digits",
        "<14>1 2024-03-10T12:00:00.1234567Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.123456700Z""#)],
    ),
    case(
        "ts_fraction_8_digits",
        "<14>1 2024-03-10T12:00:00.12345678Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00.123456780Z""#)],
    ),
    case(
        "ts_fraction_9_digits",
        "<14>1 2024-03-10T12:00:00.123456789-01:30 h a - - - m",
        &[("timestamp", r#""2024-03-10T13:30:00.123456789Z""#)],
    ),
    // Tolerated beyond the RFC: no zone; read in the input's zone.
    case(
        "ts_without_zone_uses_input_tz",
        "<14>1 2024-03-10T12:00:00 h a - - - m",
        &[("timestamp", r#""2024-03-10T07:00:00Z""#)],
    )
    .tz("+05:00"),
    case(
        "ts_with_zone_ignores_input_tz",
        "<14>1 2024-03-10T12:00:00Z h a - - - m",
        &[("timestamp", r#""2024-03-10T12:00:00Z""#)],
    )
    .tz("Asia/Almaty"),
    case(
        "pri_max",
        "<191>1 2024-03-10T12:00:00Z h a - - - m",
        &[("facility", "23"), ("severity", "7")],
    ),
    case(
        "several_spaces_between_header_fields",
        "<14>1 2024-03-10T12:00:00Z  host   app 1  ID - msg",
        &[
            ("hostname", r#""host""#),
            ("appname", r#""app""#),
            ("procid", r#""1""#),
            ("msgid", r#""ID""#),
            ("message", r#""msg""#),
        ],
    ),
    case(
        "leading_whitespace_before_pri",
        "  <14>1 2024-03-10T12:00:00Z h a - - - m",
        &[("hostname", r#""h""#), ("message", r#""m""#)],
    ),
    case(
        "forced_rfc5424",
        "<14>1 2024-03-10T12:00:00Z h a - - - m",
        &[("hostname", r#""h""#), ("$format", r#""rfc5424""#)],
    )
    .format("rfc5424"),
    // Malformed headers: the event is the raw frame.
    case("pri_above_191", "<192>1 2024-03-10T12:00:00Z h a - - - m", &[])
        .err("pri")
        .raw_only(),
    case("pri_leading_zero", "<034>1 2024-03-10T12:00:00Z h a - - - m", &[])
        .err("pri")
        .raw_only(),
    case("pri_four_digits", "<1000>1 2024-03-10T12:00:00Z h a - - - m", &[])
        .err("pri")
        .raw_only(),
    case("version_2", "<34>2 2024-03-10T12:00:00Z h a - - - m", &[])
        .err("version")
        .raw_only(),
    case("version_10", "<34>10 2024-03-10T12:00:00Z h a - - - m", &[])
        .err("version")
        .raw_only(),
    case("version_2_nil_stamp", "<34>2 - h a - - - m", &[])
        .err("version")
        .raw_only(),
    case("forced_rfc5424_on_bsd_line", "<34>Oct 11 22:14:15 h su: m", &[])
        .format("rfc5424")
        .err("version")
        .raw_only(),
    case("bad_month", "<34>1 2024-13-10T12:00:00Z h a - - - m", &[])
        .err("timestamp")
        .raw_only(),
    case("bad_day", "<34>1 2023-02-29T12:00:00Z h a - - - m", &[])
        .err("timestamp")
        .raw_only(),
    case("date_only", "<34>1 2024-03-10 h a - - - m", &[])
        .err("timestamp")
        .raw_only(),
    case("bsd_stamp_in_5424", "<34>1 Oct 11 22:14:15 h a - - - m", &[])
        .err("timestamp")
        .raw_only(),
    case("garbage_after_offset", "<34>1 2024-03-10T12:00:00+05:00x h a - - - m", &[])
        .err("timestamp")
        .raw_only(),
    case("truncated_after_hostname", "<34>1 2024-03-10T12:00:00Z host", &[])
        .err("header")
        .raw_only(),
    case("truncated_after_version", "<34>1 ", &[])
        .err("header")
        .raw_only(),
    // Malformed SD: the header is kept, the rest of the frame is the message.
    case(
        "sd_unterminated_value",
        "<34>1 2024-03-10T12:00:00Z h a - - [x@1 a=\"unterminated] msg",
        &[
            ("facility", "4"),
            ("hostname", r#""h""#),
            ("appname", r#""a""#),
            ("timestamp", r#""2024-03-10T12:00:00Z""#),
            ("message", r#""[x@1 a=\"unterminated] msg""#),
        ],
    )
    .err("structured_data"),
    case(
        "sd_value_ends_in_backslash",
        r#"<34>1 2024-03-10T12:00:00Z h a - - [x@1 a="abc\"#,
        &[("hostname", r#""h""#), ("message", r#""[x@1 a=\"abc\\""#)],
    )
    .err("structured_data"),
    case(
        "sd_garbage_after_element",
        "<34>1 2024-03-10T12:00:00Z h a - - [x@1 a=\"1\"]garbage",
        &[
            ("hostname", r#""h""#),
            ("x@1.a", r#""1""#),
            ("message", r#""garbage""#),
        ],
    )
    .err("structured_data"),
    case(
        "sd_neither_nil_nor_bracket",
        "<34>1 2024-03-10T12:00:00Z h a - - msg without sd",
        &[("appname", r#""a""#), ("message", r#""msg without sd""#)],
    )
    .err("structured_data"),
    case(
        "sd_empty_id",
        "<34>1 2024-03-10T12:00:00Z h a - - [ a=\"1\"] m",
        &[("hostname", r#""h""#), ("message", r#""[ a=\"1\"] m""#)],
    )
    .err("structured_data"),
    case(
        "sd_param_without_quotes",
        "<34>1 2024-03-10T12:00:00Z h a - - [x a=1] m",
        &[("hostname", r#""h""#), ("message", r#""[x a=1] m""#)],
    )
    .err("structured_data"),
    // Payloads inside MSG.
    case(
        "json_msg",
        r#"<14>1 2024-03-10T12:00:00Z h app - - - {"user":"alice","n":1}"#,
        &[
            ("user", r#""alice""#),
            ("n", "1"),
            ("$format", r#""rfc5424""#),
            ("$payload", r#""json""#),
        ],
    ),
    // rsyslog's RSYSLOG_SyslogProtocol23Format writes the BSD MSG with its leading space
    // (rsyslog issue #160): the payload is still found.
    case(
        "json_msg_after_two_spaces",
        r#"<14>1 2024-03-10T12:00:00Z h app - - -  {"user":"alice"}"#,
        &[("user", r#""alice""#), ("$payload", r#""json""#)],
    ),
    case(
        "json_msg_after_bom",
        "<14>1 2024-03-10T12:00:00Z h app - - - \u{feff}{\"user\":\"alice\"}",
        &[("user", r#""alice""#), ("$payload", r#""json""#)],
    ),
    case(
        "cef_msg",
        "<134>1 2024-03-10T12:00:00Z fw1 CEF - - - CEF:0|Vendor|Product|1.0|100|Blocked|5|src=10.0.0.1 dst=10.0.0.2",
        &[
            ("hostname", r#""fw1""#),
            ("cef.vendor", r#""Vendor""#),
            ("cef.severity", r#""5""#),
            ("src", r#""10.0.0.1""#),
            ("dst", r#""10.0.0.2""#),
            ("$payload", r#""cef""#),
        ],
    ),
    case(
        "bad_json_msg_keeps_header",
        "<14>1 2024-03-10T12:00:00Z h app - - - {\"user\":",
        &[
            ("hostname", r#""h""#),
            ("appname", r#""app""#),
            ("message", r#""{\"user\":""#),
        ],
    )
    .err("json"),
];

// ---------------------------------------------------------------------------------------
// RFC 3164 and the variants devices and daemons send
// ---------------------------------------------------------------------------------------

static RFC3164: &[Case] = &[
    // RFC 3164 §5.4; October is in the future of the 10 March 2024 reference: last year's.
    case(
        "rfc_example",
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        &[
            ("facility", "4"),
            ("severity", "2"),
            ("timestamp", r#""2023-10-11T22:14:15Z""#),
            ("hostname", r#""mymachine""#),
            ("appname", r#""su""#),
            ("message", r#""'su root' failed for lonvick on /dev/pts/8""#),
            ("$time", r#""2023-10-11T22:14:15Z""#),
            ("$format", r#""rfc3164""#),
            ("$payload", "null"),
        ],
    )
    .exact(),
    case(
        "no_pri_file_line",
        "Mar 10 11:59:00 web1 sshd[1234]: Accepted publickey for alice from 192.0.2.7 port 50022 ssh2",
        &[
            ("timestamp", r#""2024-03-10T11:59:00Z""#),
            ("hostname", r#""web1""#),
            ("appname", r#""sshd""#),
            ("procid", r#""1234""#),
            (
                "message",
                r#""Accepted publickey for alice from 192.0.2.7 port 50022 ssh2""#,
            ),
        ],
    )
    .exact(),
    case(
        "missing_hostname",
        "<13>Mar 10 11:00:00 su: pam_unix(su:session): session opened for user root",
        &[
            ("hostname", ABSENT),
            ("appname", r#""su""#),
            (
                "message",
                r#""pam_unix(su:session): session opened for user root""#,
            ),
        ],
    ),
    case(
        "missing_hostname_with_pid",
        "<13>Mar 10 11:00:00 sshd[77]: Connection closed",
        &[
            ("hostname", ABSENT),
            ("appname", r#""sshd""#),
            ("procid", r#""77""#),
            ("message", r#""Connection closed""#),
        ],
    ),
    case(
        "no_tag",
        "<13>Mar 10 11:00:00 host just some text",
        &[
            ("hostname", r#""host""#),
            ("appname", ABSENT),
            ("message", r#""just some text""#),
        ],
    ),
    case(
        "hostname_only",
        "Mar 10 11:00:00 host",
        &[("hostname", r#""host""#), ("message", ABSENT)],
    ),
    case(
        "iso_stamp_rsyslog_file_format",
        "2024-03-10T11:59:59.123456+01:00 web1 sshd[99]: Disconnected from 192.0.2.7",
        &[
            ("timestamp", r#""2024-03-10T10:59:59.123456Z""#),
            ("hostname", r#""web1""#),
            ("appname", r#""sshd""#),
            ("procid", r#""99""#),
            ("message", r#""Disconnected from 192.0.2.7""#),
        ],
    ),
    case(
        "iso_stamp_with_pri",
        "<86>2024-03-10T11:59:59.123456+00:00 web1 sshd[99]: x",
        &[
            ("facility", "10"),
            ("severity", "6"),
            ("timestamp", r#""2024-03-10T11:59:59.123456Z""#),
        ],
    ),
    case(
        "iso_stamp_without_zone_uses_input_tz",
        "2024-03-10 12:00:00 web1 app: x",
        &[
            ("timestamp", r#""2024-03-10T07:00:00Z""#),
            ("hostname", r#""web1""#),
        ],
    )
    .tz("+05:00"),
    case(
        "year_before_time",
        "Jan 05 2024 12:00:00 host app: m",
        &[
            ("timestamp", r#""2024-01-05T12:00:00Z""#),
            ("hostname", r#""host""#),
            ("appname", r#""app""#),
        ],
    ),
    case(
        "year_after_time",
        "Jan 05 12:00:00 2022 host app: m",
        &[
            ("timestamp", r#""2022-01-05T12:00:00Z""#),
            ("hostname", r#""host""#),
        ],
    ),
    case(
        "upper_case_month",
        "<13>OCT 11 22:14:15 host app: x",
        &[("timestamp", r#""2023-10-11T22:14:15Z""#)],
    ),
    case(
        "lower_case_month",
        "<13>oct 11 22:14:15 host app: x",
        &[("timestamp", r#""2023-10-11T22:14:15Z""#)],
    ),
    case(
        "space_padded_day",
        "Mar  1 09:00:00 host app: x",
        &[
            ("timestamp", r#""2024-03-01T09:00:00Z""#),
            ("hostname", r#""host""#),
        ],
    ),
    case(
        "single_digit_day",
        "Mar 1 09:00:00 host app: x",
        &[("timestamp", r#""2024-03-01T09:00:00Z""#)],
    ),
    case(
        "fractional_seconds",
        "Mar 10 11:00:00.123456 host app: x",
        &[("timestamp", r#""2024-03-10T11:00:00.123456Z""#)],
    ),
    case(
        "trailing_colon_after_timestamp",
        "<189>Mar 10 11:00:00: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up",
        &[
            ("timestamp", r#""2024-03-10T11:00:00Z""#),
            ("hostname", ABSENT),
            ("appname", r#""%LINK-3-UPDOWN""#),
            (
                "message",
                r#""Interface GigabitEthernet0/1, changed state to up""#,
            ),
        ],
    ),
    case(
        "cisco_ios_sequence_star_utc",
        "<189>000123: *Mar  1 18:46:11.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)",
        &[
            ("facility", "23"),
            ("severity", "5"),
            ("timestamp", r#""2024-03-01T18:46:11.123Z""#),
            ("hostname", ABSENT),
            ("appname", r#""%SYS-5-CONFIG_I""#),
            ("message", r#""Configured from console by vty0 (10.0.0.1)""#),
        ],
    ),
    // The stamp names UTC: the listener's zone does not apply.
    case(
        "cisco_ios_dot_flag_utc_overrides_tz",
        "<189>45: .Mar  1 18:46:11 UTC: %SYS-5-CONFIG_I: Configured",
        &[("timestamp", r#""2024-03-01T18:46:11Z""#)],
    )
    .tz("+05:00"),
    case(
        "cisco_ios_other_zone_uses_input_tz",
        "<189>46: Mar  1 18:46:11 ALMT: %SYS-5-CONFIG_I: Configured",
        &[
            ("timestamp", r#""2024-03-01T13:46:11Z""#),
            ("appname", r#""%SYS-5-CONFIG_I""#),
        ],
    )
    .tz("+05:00"),
    case(
        "cisco_ios_sequence_without_pri",
        "000124: *Mar  1 18:46:12.004 UTC: %LINEPROTO-5-UPDOWN: Line protocol on Interface Vlan1, changed state to up",
        &[
            ("timestamp", r#""2024-03-01T18:46:12.004Z""#),
            ("appname", r#""%LINEPROTO-5-UPDOWN""#),
        ],
    ),
    case(
        "tag_with_pam_detail",
        "Mar  1 09:00:00 web1 sshd(pam_unix)[1234]: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9",
        &[
            ("appname", r#""sshd""#),
            ("procid", r#""1234""#),
            (
                "message",
                r#""authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9""#,
            ),
        ],
    ),
    case(
        "tag_with_slash",
        "<22>Mar 10 11:00:00 mx1 postfix/smtpd[1234]: connect from unknown[198.51.100.23]",
        &[
            ("appname", r#""postfix/smtpd""#),
            ("procid", r#""1234""#),
            ("message", r#""connect from unknown[198.51.100.23]""#),
        ],
    ),
    case(
        "tag_upper_case",
        "<78>Mar 10 11:00:01 web1 CRON[1]: (root) CMD (run-parts /etc/cron.hourly)",
        &[
            ("appname", r#""CRON""#),
            ("procid", r#""1""#),
            ("message", r#""(root) CMD (run-parts /etc/cron.hourly)""#),
        ],
    ),
    case(
        "tag_kernel",
        "<4>Mar 10 11:00:02 web1 kernel: usb 1-1: new high-speed USB device number 2",
        &[
            ("appname", r#""kernel""#),
            ("procid", ABSENT),
            (
                "message",
                r#""usb 1-1: new high-speed USB device number 2""#,
            ),
        ],
    ),
    case(
        "tag_pid_without_colon",
        "<13>Mar 10 11:00:02 host app[12] message text",
        &[
            ("appname", r#""app""#),
            ("procid", r#""12""#),
            ("message", r#""message text""#),
        ],
    ),
    case(
        "sudo_message_keeps_its_padding",
        "Mar 10 11:59:41 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        &[
            ("appname", r#""sudo""#),
            (
                "message",
                r#""   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id""#,
            ),
            ("$payload", "null"),
        ],
    ),
    case(
        "cisco_asa_year_and_colon",
        "<166>Mar 10 2024 11:00:00: %ASA-6-302013: Built inbound TCP connection 1 for outside:203.0.113.9/4444 (203.0.113.9/4444) to inside:10.0.0.1/22 (10.0.0.1/22)",
        &[
            ("facility", "20"),
            ("severity", "6"),
            ("timestamp", r#""2024-03-10T11:00:00Z""#),
            ("hostname", ABSENT),
            ("appname", r#""%ASA-6-302013""#),
            (
                "message",
                r#""Built inbound TCP connection 1 for outside:203.0.113.9/4444 (203.0.113.9/4444) to inside:10.0.0.1/22 (10.0.0.1/22)""#,
            ),
        ],
    ),
    // `logging device-id hostname` puts the name before a lone colon.
    case(
        "cisco_asa_device_id",
        "<166>Mar 10 2024 11:00:00 fw01 : %ASA-4-106023: Deny tcp src outside:203.0.113.9/4444 dst inside:10.0.0.1/22 by access-group \"outside_in\" [0x0, 0x0]",
        &[
            ("hostname", r#""fw01""#),
            ("appname", r#""%ASA-4-106023""#),
            (
                "message",
                r#""Deny tcp src outside:203.0.113.9/4444 dst inside:10.0.0.1/22 by access-group \"outside_in\" [0x0, 0x0]""#,
            ),
        ],
    ),
    // No `logging timestamp` on the ASA: PRI and the tag only.
    case(
        "cisco_asa_no_timestamp",
        "<166>%ASA-6-302014: Teardown TCP connection 1 for outside:203.0.113.9/4444 to inside:10.0.0.1/22 duration 0:00:01 bytes 0 TCP FINs",
        &[
            ("timestamp", ABSENT),
            ("$time", "null"),
            ("appname", r#""%ASA-6-302014""#),
        ],
    ),
    case(
        "pri_and_tag_only",
        "<13>app: hello",
        &[
            ("facility", "1"),
            ("severity", "5"),
            ("hostname", ABSENT),
            ("appname", r#""app""#),
            ("message", r#""hello""#),
            ("$time", "null"),
        ],
    ),
    // The year rule: the latest year that puts the stamp at most a day after the reference.
    case(
        "december_line_january_reference",
        "<13>Dec 31 23:59:59 host app: x",
        &[("timestamp", r#""2024-12-31T23:59:59Z""#)],
    )
    .at("2025-01-01T00:00:05Z"),
    case(
        "january_line_december_reference_clock_ahead",
        "<13>Jan  1 00:00:01 host app: x",
        &[("timestamp", r#""2025-01-01T00:00:01Z""#)],
    )
    .at("2024-12-31T23:59:59Z"),
    case(
        "july_line_january_reference",
        "<13>Jul  1 00:00:00 host app: x",
        &[("timestamp", r#""2024-07-01T00:00:00Z""#)],
    )
    .at("2025-01-15T00:00:00Z"),
    case(
        "feb_29_goes_to_last_leap_year",
        "<13>Feb 29 12:00:00 host app: x",
        &[("timestamp", r#""2024-02-29T12:00:00Z""#)],
    )
    .at("2025-03-10T00:00:00Z"),
    // Local new year comes before UTC's: the year is that of the reference in the zone.
    case(
        "year_rule_in_local_zone",
        "<13>Jan  1 00:30:00 host app: x",
        &[("timestamp", r#""2024-12-31T19:30:00Z""#)],
    )
    .tz("+05:00")
    .at("2024-12-31T20:00:00Z"),
    case(
        "fixed_offset_zone",
        "Mar 10 12:00:00 host app: x",
        &[("timestamp", r#""2024-03-10T07:00:00Z""#)],
    )
    .tz("+05:00"),
    // Asia/Almaty was UTC+6 until March 2024; a 2023 date is stable in every tzdb version.
    case(
        "named_zone",
        "Jun 15 12:00:00 host app: x",
        &[("timestamp", r#""2023-06-15T06:00:00Z""#)],
    )
    .tz("Asia/Almaty")
    .at("2023-06-20T00:00:00Z"),
    case(
        "named_zone_dst",
        "Jul  1 12:00:00 host app: x",
        &[("timestamp", r#""2023-07-01T10:00:00Z""#)],
    )
    .tz("Europe/Berlin")
    .at("2023-07-20T00:00:00Z"),
    case(
        "negative_offset_zone",
        "Mar 10 12:00:00 host app: x",
        &[("timestamp", r#""2024-03-10T15:30:00Z""#)],
    )
    .tz("-03:30"),
    case(
        "leading_whitespace",
        "  <13>Mar 10 11:00:00 host app: x",
        &[("hostname", r#""host""#), ("message", r#""x""#)],
    ),
    case(
        "forced_rfc3164",
        "Mar 10 11:00:00 host app: x",
        &[("hostname", r#""host""#), ("$format", r#""rfc3164""#)],
    )
    .format("rfc3164"),
    // Malformed.
    case("pri_above_191", "<192>Mar 10 11:00:00 host app: x", &[])
        .err("pri")
        .raw_only(),
    case("pri_leading_zero", "<013>Mar 10 11:00:00 host app: x", &[])
        .err("pri")
        .raw_only(),
    case("pri_not_closed", "<13Mar 10 11:00:00 host app: x", &[])
        .err("unrecognized")
        .raw_only(),
    case("feb_30", "Feb 30 11:00:00 host app: x", &[])
        .err("timestamp")
        .raw_only(),
    case("hour_25", "Mar 10 25:00:00 host app: x", &[])
        .err("timestamp")
        .raw_only(),
    case("year_out_of_range", "Jan 05 1066 12:00:00 host app: x", &[])
        .err("timestamp")
        .raw_only(),
    case("forced_rfc3164_without_stamp", "hello world", &[])
        .format("rfc3164")
        .err("timestamp")
        .raw_only(),
    // Payloads inside MSG.
    case(
        "json_after_tag",
        r#"<14>Mar 10 11:00:00 host app: {"a":{"b":1},"user":"bob"}"#,
        &[
            ("hostname", r#""host""#),
            ("appname", r#""app""#),
            ("a.b", "1"),
            ("user", r#""bob""#),
            ("$payload", r#""json""#),
        ],
    ),
    // A payload's `message` replaces the syslog MSG that carried it.
    case(
        "json_message_replaces_msg",
        r#"<14>Mar 10 11:00:00 host app: {"message":"inner","level":"warn"}"#,
        &[("message", r#""inner""#), ("level", r#""warn""#)],
    ),
    // Before `EventBuf::put`, array values were added to the header's MSG instead.
    case(
        "json_message_array_replaces_msg",
        r#"<14>Mar 10 11:00:00 host app: {"message":["a","b"],"hostname":"inner-host"}"#,
        &[
            ("message", r#"["a","b"]"#),
            ("hostname", r#""inner-host""#),
        ],
    ),
    case(
        "json_time_replaces_header_time",
        r#"<14>Mar 10 11:00:00 host app: {"@timestamp":"2024-03-10T10:59:59.5Z"}"#,
        &[
            ("timestamp", r#""2024-03-10T11:00:00Z""#),
            ("$time", r#""2024-03-10T10:59:59.500Z""#),
        ],
    ),
    case(
        "cee_cookie",
        r#"<14>Mar 10 11:00:00 host app: @cee: {"msg":"hello","pid":42}"#,
        &[
            ("msg", r#""hello""#),
            ("pid", "42"),
            ("$payload", r#""json""#),
        ],
    ),
    case(
        "cee_cookie_without_space",
        r#"<14>Mar 10 11:00:00 host app: @cee:{"msg":"hello"}"#,
        &[("msg", r#""hello""#), ("$payload", r#""json""#)],
    ),
    case(
        "json_without_tag_or_host",
        r#"<14>Mar 10 11:00:00 {"a":1}"#,
        &[("hostname", ABSENT), ("a", "1"), ("$payload", r#""json""#)],
    ),
    case(
        "cef_after_hostname",
        "<134>Mar 10 11:00:00 fw1 CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232",
        &[
            ("hostname", r#""fw1""#),
            ("appname", ABSENT),
            ("cef.name", r#""worm successfully stopped""#),
            ("src", r#""10.0.0.1""#),
            ("spt", r#""1232""#),
            ("$payload", r#""cef""#),
        ],
    ),
    case(
        "cef_after_tag",
        "<134>Mar 10 11:00:00 fw1 vendor-agent[5]: CEF:0|V|P|1|sig|name|3|act=blocked",
        &[
            ("appname", r#""vendor-agent""#),
            ("cef.signature_id", r#""sig""#),
            ("act", r#""blocked""#),
        ],
    ),
    case(
        "leef_after_hostname",
        "<134>Mar 10 11:00:00 qradar LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1",
        &[
            ("hostname", r#""qradar""#),
            ("leef.event_id", r#""15345""#),
            ("src", r#""192.0.2.0""#),
            ("dst", r#""172.50.123.1""#),
            ("$payload", r#""leef""#),
        ],
    ),
    case(
        "kv_after_tag",
        "<13>Mar 10 11:00:00 host app: user=alice action=login result=\"ok, fine\"",
        &[
            ("appname", r#""app""#),
            ("user", r#""alice""#),
            ("result", r#""ok, fine""#),
            ("message", r#""user=alice action=login result=\"ok, fine\"""#),
            ("$payload", r#""kv""#),
        ],
    ),
    // FortiGate's default: PRI, then key=value pairs; no stamp, no host, no tag.
    case(
        "fortigate_kv_right_after_pri",
        "<189>date=2024-03-10 time=11:00:00 devname=\"FG100E\" devid=\"FG100E4Q17000000\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" srcip=10.1.100.11 dstip=203.0.113.35 action=\"close\"",
        &[
            ("facility", "23"),
            ("severity", "5"),
            ("hostname", ABSENT),
            ("appname", ABSENT),
            ("devname", r#""FG100E""#),
            ("date", r#""2024-03-10""#),
            ("srcip", r#""10.1.100.11""#),
            ("action", r#""close""#),
            ("$payload", r#""kv""#),
        ],
    ),
    // iptables/UFW as the kernel logs them: a bracketed uptime and prefix, then the pairs.
    case(
        "iptables_ufw_kernel_line",
        "Mar 10 11:59:50 web1 kernel: [1234567.890123] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=48213 DF PROTO=TCP SPT=44321 DPT=23 WINDOW=65535 RES=0x00 SYN URGP=0",
        &[
            ("appname", r#""kernel""#),
            ("IN", r#""eth0""#),
            ("OUT", r#""""#),
            ("SRC", r#""203.0.113.9""#),
            ("DPT", r#""23""#),
            ("PROTO", r#""TCP""#),
            ("$payload", r#""kv""#),
        ],
    ),
    case(
        "iptables_uptime_with_space",
        "Mar 10 11:59:50 web1 kernel: [  512.123456] IN=eth0 OUT= SRC=203.0.113.9 DST=192.0.2.10 PROTO=UDP",
        &[("SRC", r#""203.0.113.9""#), ("$payload", r#""kv""#)],
    ),
    case(
        "free_text_with_equals_is_no_payload",
        "<13>Mar 10 11:00:00 host app: the value x=1 was rejected",
        &[("x", ABSENT), ("$payload", "null")],
    ),
    // A payload's name replaces the syslog field of that name, as for JSON.
    case(
        "kv_names_replace_header_names",
        "<13>Mar 10 11:00:00 host app: severity=high message=hello",
        &[("severity", r#""high""#), ("message", r#""hello""#)],
    ),
    case(
        "bad_kv_keeps_header",
        "<13>Mar 10 11:00:00 host app: a=1 b=\"open",
        &[
            ("hostname", r#""host""#),
            ("a", r#""1""#),
            ("message", r#""a=1 b=\"open""#),
        ],
    )
    .err("kv"),
    case(
        "bad_cef_keeps_header",
        "<13>Mar 10 11:00:00 host CEF:0|only|three",
        &[
            ("hostname", r#""host""#),
            ("message", r#""CEF:0|only|three""#),
        ],
    )
    .err("cef"),
    case(
        "payload_parsing_off",
        r#"<14>Mar 10 11:00:00 host app: {"a":1}"#,
        &[("a", ABSENT), ("message", r#""{\"a\":1}""#), ("$payload", "null")],
    )
    .format("rfc3164-no-payload"),
];

// ---------------------------------------------------------------------------------------
// JSON lines
// ---------------------------------------------------------------------------------------

static JSON: &[Case] = &[
    case(
        "nested_objects_become_dotted_paths",
        r#"{"a":{"b":{"c":"d"},"e":"f"},"x":1}"#,
        &[
            ("a.b.c", r#""d""#),
            ("a.e", r#""f""#),
            ("x", "1"),
            ("$format", r#""json""#),
            ("$payload", "null"),
            ("$time", "null"),
        ],
    )
    .exact(),
    case(
        "arrays_are_multi_valued",
        r#"{"tags":["a","b"],"n":[1,2,3],"one":["x"]}"#,
        &[
            ("tags", r#"["a","b"]"#),
            ("n", "[1,2,3]"),
            ("one", r#""x""#),
        ],
    )
    .exact(),
    case(
        "array_of_objects",
        r#"{"a":[{"b":1,"c":"x"},{"b":2}]}"#,
        &[("a.b", "[1,2]"), ("a.c", r#""x""#)],
    )
    .exact(),
    case(
        "nested_arrays_flatten",
        r#"{"m":[[1,2],[3]]}"#,
        &[("m", "[1,2,3]")],
    )
    .exact(),
    case(
        "empty_object_and_array_give_no_field",
        r#"{"o":{},"a":[],"k":"v"}"#,
        &[("k", r#""v""#)],
    )
    .exact(),
    case("empty_object_line", "{}", &[("$format", r#""json""#)]).exact(),
    case(
        "numbers",
        r#"{"i":42,"neg":-7,"f":1.5,"nf":-0.25,"big":18446744073709551615,"min":-9223372036854775808,"zero":0}"#,
        &[
            ("i", "42"),
            ("neg", "-7"),
            ("f", "1.5"),
            ("nf", "-0.25"),
            ("big", "18446744073709551615"),
            ("min", "-9223372036854775808"),
            ("zero", "0"),
        ],
    )
    .exact(),
    case(
        "u64_just_above_i64",
        r#"{"u":9223372036854775808}"#,
        &[("u", "9223372036854775808")],
    ),
    case(
        "bools_and_null",
        r#"{"t":true,"f":false,"n":null}"#,
        &[("t", "true"), ("f", "false"), ("n", "null")],
    )
    .exact(),
    case(
        "escaped_strings",
        r#"{"nl":"line1\nline2","e":"caf\u00e9","q":"say \"hi\"","b":"C:\\Windows","tab":"a\tb","u":"\ud83d\ude00"}"#,
        &[
            ("nl", r#""line1\nline2""#),
            ("e", r#""café""#),
            ("q", r#""say \"hi\"""#),
            ("b", r#""C:\\Windows""#),
            ("tab", r#""a\tb""#),
            ("u", r#""😀""#),
        ],
    )
    .exact(),
    case(
        "escaped_key",
        r#"{"a\"b":1,"ключ":"значение"}"#,
        &[("a\"b", "1"), ("ключ", r#""значение""#)],
    )
    .exact(),
    case(
        "key_with_dots",
        r#"{"a.b":1,"a":{"c":2}}"#,
        &[("a.b", "1"), ("a.c", "2")],
    )
    .exact(),
    case(
        "leading_whitespace",
        "  \t{\"a\":1}",
        &[("a", "1"), ("$format", r#""json""#)],
    ),
    // The first line of a file written by a Windows tool.
    case(
        "leading_bom",
        "\u{feff}{\"a\":1}",
        &[("a", "1"), ("$format", r#""json""#)],
    ),
    // A repeated key is one more value, as in an array.
    case("duplicate_key", r#"{"a":1,"a":2}"#, &[("a", "[1,2]")]).exact(),
    // evtx_dump (omerbenamram/evtx) `-o jsonl`: flattened to the names Sigma rules use
    // (`Event.System.X` → `X`, `#attributes` → `<element>_<attribute>`), see parser/json.rs.
    case(
        "evtx_dump_shape",
        r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing","Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}},"EventID":4625,"Level":0,"Keywords":"0x8010000000000000","TimeCreated":{"#attributes":{"SystemTime":"2024-03-10T11:59:59.482113Z"}},"EventRecordID":1234567,"Correlation":null,"Execution":{"#attributes":{"ProcessID":640,"ThreadID":4028}},"Channel":"Security","Computer":"WIN-DC01"},"EventData":{"TargetUserName":"administrator","LogonType":3,"IpAddress":"203.0.113.50"}}}"##,
        &[
            ("EventID", "4625"),
            ("Channel", r#""Security""#),
            ("Computer", r#""WIN-DC01""#),
            ("Correlation", "null"),
            (
                "Provider_Name",
                r#""Microsoft-Windows-Security-Auditing""#,
            ),
            ("Execution_ProcessID", "640"),
            (
                "TimeCreated_SystemTime",
                r#""2024-03-10T11:59:59.482113Z""#,
            ),
            ("TargetUserName", r#""administrator""#),
            ("LogonType", "3"),
            ("$time", r#""2024-03-10T11:59:59.482113Z""#),
        ],
    ),
    case(
        "winlogbeat_shape",
        r#"{"@timestamp":"2024-03-10T11:59:59.482Z","host":{"name":"WIN-DC01"},"winlog":{"channel":"Security","event_id":"4625","provider_name":"Microsoft-Windows-Security-Auditing","record_id":"1234567","keywords":["Audit Failure"],"event_data":{"TargetUserName":"administrator","LogonType":"3"}},"event":{"code":"4625","category":["authentication"],"outcome":"failure"}}"#,
        &[
            ("@timestamp", r#""2024-03-10T11:59:59.482Z""#),
            ("winlog.event_id", r#""4625""#),
            ("winlog.channel", r#""Security""#),
            ("winlog.keywords", r#""Audit Failure""#),
            ("winlog.event_data.TargetUserName", r#""administrator""#),
            ("event.code", r#""4625""#),
            ("event.category", r#""authentication""#),
            ("host.name", r#""WIN-DC01""#),
            ("$time", r#""2024-03-10T11:59:59.482Z""#),
        ],
    ),
    // Winlogbeat 8: the dotted names stay, and the Sigma names are added (parser/json.rs).
    case(
        "winlogbeat_sigma_names",
        r#"{"@timestamp":"2024-03-10T11:59:59.482Z","winlog":{"api":"wineventlog","channel":"Security","computer_name":"WIN-DC01.corp.example.com","event_data":{"IpAddress":"203.0.113.50","LogonType":"3","TargetUserName":"administrator"},"event_id":"4625","provider_name":"Microsoft-Windows-Security-Auditing","record_id":1234567,"task":"Logon"}}"#,
        &[
            ("winlog.event_id", r#""4625""#),
            ("winlog.event_data.TargetUserName", r#""administrator""#),
            ("EventID", r#""4625""#),
            ("Channel", r#""Security""#),
            ("Computer", r#""WIN-DC01.corp.example.com""#),
            (
                "Provider_Name",
                r#""Microsoft-Windows-Security-Auditing""#,
            ),
            ("EventRecordID", "1234567"),
            ("TargetUserName", r#""administrator""#),
            ("IpAddress", r#""203.0.113.50""#),
            ("LogonType", r#""3""#),
            ("task", ABSENT),
            ("api", ABSENT),
            ("$time", r#""2024-03-10T11:59:59.482Z""#),
        ],
    ),
    // `user_data` too (1102, 104); 104's own `Channel` (the cleared log) comes second.
    case(
        "winlogbeat_user_data",
        r#"{"@timestamp":"2024-03-10T12:00:00Z","winlog":{"channel":"System","event_id":"104","provider_name":"Microsoft-Windows-Eventlog","user_data":{"BackupPath":"","Channel":"Application","SubjectDomainName":"CORP","SubjectUserName":"mallory","xml_name":"LogFileCleared"}}}"#,
        &[
            ("EventID", r#""104""#),
            ("Channel", r#"["System","Application"]"#),
            ("SubjectUserName", r#""mallory""#),
            ("winlog.user_data.Channel", r#""Application""#),
        ],
    ),
    // Winlogbeat 7 through Logstash: a numeric event_id stays a number.
    case(
        "winlogbeat_7_numeric_event_id",
        r#"{"@timestamp":"2024-03-10T12:00:01.007Z","@version":"1","winlog":{"channel":"Security","event_id":4624,"event_data":{"TargetUserName":"alice"}}}"#,
        &[("EventID", "4624"), ("TargetUserName", r#""alice""#)],
    ),
    // Only a `winlog` object with an `event_id` is Winlogbeat's.
    case(
        "winlog_without_event_id_is_not_flattened",
        r#"{"winlog":{"channel":"Security","event_data":{"TargetUserName":"alice"}}}"#,
        &[
            ("winlog.event_data.TargetUserName", r#""alice""#),
            ("TargetUserName", ABSENT),
            ("Channel", ABSENT),
        ],
    ),
    // Time fields, in the order of DEFAULT_TIME_FIELDS; the first valid one wins.
    case(
        "time_at_timestamp_before_timestamp",
        r#"{"timestamp":"2024-01-01T00:00:00Z","@timestamp":"2024-02-02T00:00:00Z"}"#,
        &[("$time", r#""2024-02-02T00:00:00Z""#)],
    ),
    case(
        "time_invalid_first_field_falls_through",
        r#"{"@timestamp":"yesterday","timestamp":"2024-01-01T00:00:00Z"}"#,
        &[("$time", r#""2024-01-01T00:00:00Z""#)],
    ),
    case(
        "time_timestamp_before_eventtime",
        r#"{"EventTime":"2024-01-01 00:00:00","timestamp":"2024-02-02T00:00:00+01:00"}"#,
        &[("$time", r#""2024-02-01T23:00:00Z""#)],
    ),
    case(
        "time_timecreated",
        r#"{"TimeCreated":"2024-01-01T10:00:00.123Z"}"#,
        &[("$time", r#""2024-01-01T10:00:00.123Z""#)],
    ),
    // NXLog's EventTime carries no zone: read in the input's zone.
    case(
        "time_eventtime_zone_less",
        r#"{"EventTime":"2024-03-10 12:59:59","EventID":4625}"#,
        &[("$time", r#""2024-03-10T11:59:59Z""#)],
    )
    .tz("Europe/Berlin"),
    case(
        "time_epoch_seconds",
        r#"{"timestamp":1700000000}"#,
        &[("$time", r#""2023-11-14T22:13:20Z""#)],
    ),
    case(
        "time_epoch_millis",
        r#"{"timestamp":1700000000123}"#,
        &[("$time", r#""2023-11-14T22:13:20.123Z""#)],
    ),
    case(
        "time_epoch_micros_string",
        r#"{"timestamp":"1700000000123456"}"#,
        &[("$time", r#""2023-11-14T22:13:20.123456Z""#)],
    ),
    case(
        "time_epoch_float",
        r#"{"timestamp":1700000000.5}"#,
        &[("$time", r#""2023-11-14T22:13:20.500Z""#)],
    ),
    // Out of the representable range (year 5138, 2264): no time, and no overflow.
    case(
        "time_epoch_seconds_out_of_range",
        r#"{"timestamp":99999999999}"#,
        &[("$time", "null"), ("timestamp", "99999999999")],
    ),
    case(
        "time_epoch_millis_out_of_range",
        r#"{"timestamp":9300000000000}"#,
        &[("$time", "null")],
    ),
    case(
        "time_epoch_micros_out_of_range",
        r#"{"timestamp":9300000000000000}"#,
        &[("$time", "null")],
    ),
    case(
        "time_negative_epoch",
        r#"{"timestamp":-5}"#,
        &[("$time", "null")],
    ),
    case(
        "time_field_that_is_an_object",
        r#"{"timestamp":{"seconds":1}}"#,
        &[("$time", "null"), ("timestamp.seconds", "1")],
    ),
    case(
        "forced_json",
        r#"{"a":1}"#,
        &[("a", "1"), ("$format", r#""json""#)],
    )
    .format("json"),
    // Invalid JSON: the frame is kept whole as the message.
    case("invalid_json", r#"{"bad": }"#, &[]).err("json").raw_only(),
    case("truncated_json", r#"{"a":"unterminated"#, &[])
        .err("json")
        .raw_only(),
    case("trailing_garbage", r#"{"a":1} trailing"#, &[])
        .err("json")
        .raw_only(),
    case("forced_json_array", "[1,2]", &[])
        .format("json")
        .err("json")
        .raw_only(),
    case("forced_json_on_text", "hello", &[])
        .format("json")
        .err("json")
        .raw_only(),
    case("array_line_is_unrecognized", "[1,2]", &[])
        .err("unrecognized")
        .raw_only(),
];

// ---------------------------------------------------------------------------------------
// CEF
// ---------------------------------------------------------------------------------------

static CEF: &[Case] = &[
    case(
        "spec_example",
        "CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232",
        &[
            ("cef.version", r#""0""#),
            ("cef.vendor", r#""Security""#),
            ("cef.product", r#""threatmanager""#),
            ("cef.product_version", r#""1.0""#),
            ("cef.signature_id", r#""100""#),
            ("cef.name", r#""worm successfully stopped""#),
            ("cef.severity", r#""10""#),
            ("src", r#""10.0.0.1""#),
            ("dst", r#""2.1.2.2""#),
            ("spt", r#""1232""#),
            ("$format", r#""cef""#),
        ],
    )
    .exact(),
    case(
        "header_escapes",
        r"CEF:0|Vendor\|Inc|Prod\\uct|1.0|100|name with \| pipe|High|act=blocked",
        &[
            ("cef.vendor", r#""Vendor|Inc""#),
            ("cef.product", r#""Prod\\uct""#),
            ("cef.name", r#""name with | pipe""#),
            ("cef.severity", r#""High""#),
            ("act", r#""blocked""#),
        ],
    ),
    case(
        "header_other_backslash_stays",
        r"CEF:0|V|P|1.0|100|C:\temp|3|",
        &[("cef.name", r#""C:\\temp""#)],
    ),
    case(
        "extension_escapes",
        r"CEF:0|V|P|1.0|100|n|3|msg=a\=b c\\d line\nnext\rret fname=x",
        &[
            ("msg", r#""a=b c\\d line\nnext\rret""#),
            ("fname", r#""x""#),
        ],
    ),
    case(
        "extension_other_backslash_stays",
        r"CEF:0|V|P|1.0|100|n|3|filePath=C:\Windows\temp\x.exe act=quarantined",
        &[
            ("filePath", r#""C:\\Windows\\temp\\x.exe""#),
            ("act", r#""quarantined""#),
        ],
    ),
    case(
        "escaped_backslash_before_equals",
        r"CEF:0|V|P|1.0|100|n|3|fname=a\\=b act=x",
        &[("fname", r#""a\\=b""#), ("act", r#""x""#)],
    ),
    case(
        "pipe_in_extension",
        r"CEF:0|V|P|1.0|100|n|3|msg=a|b c\|d act=x",
        &[("msg", r#""a|b c|d""#), ("act", r#""x""#)],
    ),
    case(
        "values_with_spaces",
        "CEF:0|V|P|1.0|100|n|3|msg=Detected a threat. No action needed. act=blocked suser=John Smith",
        &[
            ("msg", r#""Detected a threat. No action needed.""#),
            ("act", r#""blocked""#),
            ("suser", r#""John Smith""#),
        ],
    ),
    case(
        "equals_in_url",
        "CEF:0|V|P|1.0|100|n|3|request=https://example.com/search?q=test&lang=en dst=1.1.1.1",
        &[
            ("request", r#""https://example.com/search?q=test&lang=en""#),
            ("dst", r#""1.1.1.1""#),
        ],
    ),
    case(
        "empty_values",
        "CEF:0|V|P|1.0|100|n|3|act= dst=1.2.3.4 suser=",
        &[("act", r#""""#), ("dst", r#""1.2.3.4""#), ("suser", r#""""#)],
    ),
    case(
        "several_spaces_between_pairs",
        "CEF:0|V|P|1.0|100|n|3|src=1.2.3.4   dst=5.6.7.8",
        &[("src", r#""1.2.3.4""#), ("dst", r#""5.6.7.8""#)],
    ),
    case(
        "empty_header_fields_and_extension",
        "CEF:0|||||||",
        &[
            ("cef.version", r#""0""#),
            ("cef.vendor", r#""""#),
            ("cef.product", r#""""#),
            ("cef.product_version", r#""""#),
            ("cef.signature_id", r#""""#),
            ("cef.name", r#""""#),
            ("cef.severity", r#""""#),
        ],
    )
    .exact(),
    case(
        "repeated_key",
        "CEF:0|V|P|1.0|100|n|3|cs1=a cs1=b",
        &[("cs1", r#"["a","b"]"#)],
    ),
    case(
        "labels_and_custom_strings",
        "CEF:0|V|P|1.0|100|n|3|cs1Label=Policy cs1=Block all cn1Label=Count cn1=3 deviceCustomDate1=Mar 10 2024 12:00:00",
        &[
            ("cs1Label", r#""Policy""#),
            ("cs1", r#""Block all""#),
            ("cn1", r#""3""#),
            ("deviceCustomDate1", r#""Mar 10 2024 12:00:00""#),
        ],
    ),
    case(
        "cef_version_1_and_space_after_colon",
        "CEF: 1|V|P|1.0|100|n|3|a=b",
        &[("cef.version", r#""1""#), ("a", r#""b""#)],
    ),
    case(
        "forced_cef",
        "CEF:0|V|P|1.0|100|n|3|a=b",
        &[("a", r#""b""#), ("$format", r#""cef""#)],
    )
    .format("cef"),
    case("too_few_header_fields", "CEF:0|Vendor|Product|1.0|100", &[])
        .err("cef")
        .raw_only(),
    case("forced_cef_on_text", "hello", &[])
        .format("cef")
        .err("cef")
        .raw_only(),
    // Found by `never_panics_and_never_loses_the_frame`: a forced format shorter than `CEF:`
    // sliced past the frame's end.
    case("forced_cef_on_short_text", "hi", &[])
        .format("cef")
        .err("cef")
        .raw_only(),
];

// ---------------------------------------------------------------------------------------
// LEEF
// ---------------------------------------------------------------------------------------

static LEEF: &[Case] = &[
    case(
        "leef_1_tab",
        "LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1\tsev=5\tcat=anomaly\tusrName=joe black",
        &[
            ("leef.version", r#""1.0""#),
            ("leef.vendor", r#""Microsoft""#),
            ("leef.product", r#""MSExchange""#),
            ("leef.product_version", r#""4.0 SP1""#),
            ("leef.event_id", r#""15345""#),
            ("src", r#""192.0.2.0""#),
            ("dst", r#""172.50.123.1""#),
            ("sev", r#""5""#),
            ("cat", r#""anomaly""#),
            ("usrName", r#""joe black""#),
            ("$format", r#""leef""#),
        ],
    )
    .exact(),
    case(
        "leef_2_caret",
        "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21",
        &[
            ("leef.version", r#""2.0""#),
            ("leef.event_id", r#""41""#),
            ("src", r#""10.0.1.8""#),
            ("dst", r#""10.0.0.5""#),
            ("dstPort", r#""21""#),
        ],
    ),
    case(
        "leef_2_hex_x",
        "LEEF:2.0|Lancope|StealthWatch|1.0|41|x5E|src=10.0.1.8^dst=10.0.0.5",
        &[("src", r#""10.0.1.8""#), ("dst", r#""10.0.0.5""#)],
    ),
    case(
        "leef_2_hex_0x",
        "LEEF:2.0|Lancope|StealthWatch|1.0|41|0x5E|src=10.0.1.8^dst=10.0.0.5",
        &[("src", r#""10.0.1.8""#), ("dst", r#""10.0.0.5""#)],
    ),
    case(
        "leef_2_backslash_t",
        "LEEF:2.0|Lancope|StealthWatch|1.0|41|\\t|src=10.0.1.8\tdst=10.0.0.5",
        &[("src", r#""10.0.1.8""#), ("dst", r#""10.0.0.5""#)],
    ),
    case(
        "leef_2_empty_delimiter_is_tab",
        "LEEF:2.0|Lancope|StealthWatch|1.0|41||src=10.0.1.8\tdst=10.0.0.5",
        &[("src", r#""10.0.1.8""#), ("dst", r#""10.0.0.5""#)],
    ),
    case(
        "leef_1_with_spaces_instead_of_tabs",
        "LEEF:1.0|Vendor|Product|1.0|evt|src=1.2.3.4 dst=5.6.7.8 usrName=joe black",
        &[
            ("src", r#""1.2.3.4""#),
            ("dst", r#""5.6.7.8""#),
            ("usrName", r#""joe black""#),
        ],
    ),
    case(
        "leef_1_single_attribute",
        "LEEF:1.0|Vendor|Product|1.0|evt|src=1.2.3.4",
        &[("src", r#""1.2.3.4""#)],
    ),
    case(
        "leef_1_no_attributes_no_trailing_pipe",
        "LEEF:1.0|Vendor|Product|1.0|EID",
        &[
            ("leef.version", r#""1.0""#),
            ("leef.vendor", r#""Vendor""#),
            ("leef.product", r#""Product""#),
            ("leef.product_version", r#""1.0""#),
            ("leef.event_id", r#""EID""#),
        ],
    )
    .exact(),
    case(
        "leef_equals_in_value",
        "LEEF:1.0|V|P|1.0|E|url=https://x/?a=1&b=2\tsrc=1.2.3.4",
        &[("url", r#""https://x/?a=1&b=2""#), ("src", r#""1.2.3.4""#)],
    ),
    case(
        "leef_devtime",
        "LEEF:2.0|V|P|1.0|E|^|devTime=Mar 10 2024 12:00:00^devTimeFormat=MMM dd yyyy HH:mm:ss",
        &[
            ("devTime", r#""Mar 10 2024 12:00:00""#),
            ("devTimeFormat", r#""MMM dd yyyy HH:mm:ss""#),
        ],
    ),
    case(
        "forced_leef",
        "LEEF:1.0|V|P|1.0|E|a=b",
        &[("a", r#""b""#), ("$format", r#""leef""#)],
    )
    .format("leef"),
    case("too_few_header_fields", "LEEF:1.0|Vendor|Product", &[])
        .err("leef")
        .raw_only(),
    // Found by `never_panics_and_never_loses_the_frame`, as for CEF.
    case("forced_leef_on_short_text", "x", &[])
        .format("leef")
        .err("leef")
        .raw_only(),
    case("forced_leef_on_text", "LEAF:1.0|V|P|1.0|E|a=b", &[])
        .format("leef")
        .err("leef")
        .raw_only(),
    case(
        "leef_2_bad_delimiter_keeps_header",
        "LEEF:2.0|V|P|1.0|E|abc|a=b",
        &[
            ("leef.vendor", r#""V""#),
            ("message", r#""LEEF:2.0|V|P|1.0|E|abc|a=b""#),
        ],
    )
    .err("leef"),
];

// ---------------------------------------------------------------------------------------
// key=value
// ---------------------------------------------------------------------------------------

static KV: &[Case] = &[
    case(
        "bare_values",
        "user=alice action=login count=3",
        &[
            ("user", r#""alice""#),
            ("action", r#""login""#),
            ("count", r#""3""#),
            ("$format", r#""kv""#),
        ],
    )
    .exact(),
    case(
        "double_quoted_with_escapes",
        r#"msg="User \"JD\" logged in" path="C:\\temp\\x" other="a\nb""#,
        &[
            ("msg", r#""User \"JD\" logged in""#),
            ("path", r#""C:\\temp\\x""#),
            ("other", r#""a\\nb""#),
        ],
    )
    .exact(),
    case(
        "single_quoted",
        r"note='it\'s fine' who='x y'",
        &[("note", r#""it's fine""#), ("who", r#""x y""#)],
    )
    .exact(),
    case(
        "empty_values",
        "IN=eth0 OUT= PHYSIN= MAC=",
        &[
            ("IN", r#""eth0""#),
            ("OUT", r#""""#),
            ("PHYSIN", r#""""#),
            ("MAC", r#""""#),
        ],
    )
    .exact(),
    case(
        "empty_quoted_value",
        r#"a="" b=1"#,
        &[("a", r#""""#), ("b", r#""1""#)],
    )
    .exact(),
    case(
        "fortigate_line",
        r#"date=2024-03-10 time=11:59:58 devname="FG100E" devid="FG100E4Q17000000" eventtime=1710071998123456789 tz="+0000" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.1.100.11 srcport=58012 srcintf="port12" dstip=203.0.113.35 dstport=443 dstintf="wan1" proto=6 action="close" policyid=1 service="HTTPS" duration=6 sentbyte=14632 rcvdbyte=119722 msg="Connection closed by peer, see \"details\"""#,
        &[
            ("date", r#""2024-03-10""#),
            ("time", r#""11:59:58""#),
            ("devname", r#""FG100E""#),
            ("tz", r#""+0000""#),
            ("srcip", r#""10.1.100.11""#),
            ("dstport", r#""443""#),
            ("action", r#""close""#),
            ("msg", r#""Connection closed by peer, see \"details\"""#),
        ],
    ),
    case(
        "iptables_line",
        "IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=192.0.2.1 DST=198.51.100.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=29200 RES=0x00 SYN URGP=0",
        &[
            ("IN", r#""eth0""#),
            ("OUT", r#""""#),
            ("MAC", r#""00:11:22:33:44:55:66:77:88:99:aa:bb:08:00""#),
            ("SRC", r#""192.0.2.1""#),
            ("DPT", r#""22""#),
            ("URGP", r#""0""#),
            ("DF", ABSENT),
            ("SYN", ABSENT),
        ],
    ),
    case(
        "comma_after_quoted_value",
        r#"a="x", b="y""#,
        &[("a", r#""x""#), ("b", r#""y""#)],
    )
    .exact(),
    case(
        "tabs_between_pairs",
        "a=1\tb=2",
        &[("a", r#""1""#), ("b", r#""2""#)],
    )
    .exact(),
    case("repeated_key", "a=1 a=2", &[("a", r#"["1","2"]"#)]).exact(),
    case(
        "key_with_dots_dashes_at",
        "src.ip=1.2.3.4 user-name=bob mail@x=y",
        &[
            ("src.ip", r#""1.2.3.4""#),
            ("user-name", r#""bob""#),
            ("mail@x", r#""y""#),
        ],
    ),
    case(
        "forced_kv",
        "a=1",
        &[("a", r#""1""#), ("$format", r#""kv""#)],
    )
    .format("kv"),
    // A malformed pair: the pairs before it stay, and the frame is the message.
    case(
        "unterminated_quote",
        r#"a=1 b="open"#,
        &[("a", r#""1""#), ("message", r#""a=1 b=\"open""#)],
    )
    .err("kv"),
    case("forced_kv_without_pairs", "just text", &[])
        .format("kv")
        .err("kv")
        .raw_only(),    // Linux audit records: the time is audit(SECONDS.MILLIS:SERIAL); a user-space record's
    // single-quoted msg='...' holds pairs of its own.
    case(
        "audit_raw_user_auth",
        r#"type=USER_AUTH msg=audit(1700000000.123:457): pid=4100 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=PAM:authentication grantors=? acct="bob" exe="/usr/sbin/sshd" hostname=203.0.113.7 addr=203.0.113.7 terminal=ssh res=failed'"#,
        &[
            ("type", r#""USER_AUTH""#),
            ("pid", r#""4100""#),
            ("op", r#""PAM:authentication""#),
            ("acct", r#""bob""#),
            ("exe", r#""/usr/sbin/sshd""#),
            ("addr", r#""203.0.113.7""#),
            ("terminal", r#""ssh""#),
            ("res", r#""failed""#),
            (
                "msg",
                r#"["audit(1700000000.123:457):","op=PAM:authentication grantors=? acct=\"bob\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.7 addr=203.0.113.7 terminal=ssh res=failed"]"#,
            ),
            ("$time", r#""2023-11-14T22:13:20.123Z""#),
            ("$format", r#""kv""#),
        ],
    ),
    case(
        "audit_relayed_by_syslog_keeps_the_record_time",
        r#"<86>Nov 14 22:13:25 web01 audisp-syslog: type=ADD_USER msg=audit(1700000000.5:60): pid=2004 uid=0 auid=1000 ses=3 msg='op=add-user acct="eve" exe="/usr/sbin/useradd" hostname=web01 addr=? terminal=pts/0 res=success'"#,
        &[
            ("appname", r#""audisp-syslog""#),
            // The audit record's hostname= does not replace the reporting host.
            ("hostname", r#""web01""#),
            ("type", r#""ADD_USER""#),
            ("op", r#""add-user""#),
            ("acct", r#""eve""#),
            ("res", r#""success""#),
            ("$time", r#""2023-11-14T22:13:20.500Z""#),
            ("$payload", r#""kv""#),
        ],
    )
    .at("2023-11-15T00:00:00Z"),
    case(
        "audit_enriched_fields_after_gs",
        "type=SYSCALL msg=audit(1700000000.250:99): arch=c000003e syscall=59 success=yes exit=0 ppid=900 pid=901 auid=1000 uid=0 comm=\"bash\" exe=\"/usr/bin/bash\" key=\"rootcmd\"\u{1d}ARCH=x86_64 SYSCALL=execve AUID=\"alice\" UID=\"root\"",
        &[
            ("syscall", r#""59""#),
            ("key", r#""rootcmd""#),
            ("ARCH", r#""x86_64""#),
            ("SYSCALL", r#""execve""#),
            ("AUID", r#""alice""#),
            ("UID", r#""root""#),
            ("$time", r#""2023-11-14T22:13:20.250Z""#),
        ],
    ),
    // Only an audit msg='...' is opened: a double-quoted msg is text.
    case(
        "double_quoted_msg_is_not_opened",
        r#"type=x msg="user=bob action=login""#,
        &[("msg", r#""user=bob action=login""#), ("user", ABSENT)],
    ),
];

// ---------------------------------------------------------------------------------------
// Frames that are nothing at all
// ---------------------------------------------------------------------------------------

static OTHER: &[Case] = &[
    case("empty_frame", "", &[("$format", r#""raw""#)])
        .err("empty")
        .raw_only(),
    case("whitespace_frame", "  \t \r ", &[])
        .err("empty")
        .raw_only(),
    case("nul_frame", "\0\0", &[]).err("empty").raw_only(),
    case("plain_text", "hello world", &[("$format", r#""raw""#)])
        .err("unrecognized")
        .raw_only(),
    case("angle_bracket_text", "<abc>hello", &[])
        .err("unrecognized")
        .raw_only(),
    case("empty_pri", "<>hello", &[])
        .err("unrecognized")
        .raw_only(),
    case("number_and_text", "404 not found", &[])
        .err("unrecognized")
        .raw_only(),
    case(
        "forced_raw",
        "<13>Mar 10 11:00:00 host app: x",
        &[
            ("message", r#""<13>Mar 10 11:00:00 host app: x""#),
            ("$format", r#""raw""#),
            ("$time", "null"),
        ],
    )
    .format("raw")
    .exact(),
    case("forced_raw_empty", "", &[])
        .format("raw")
        .err("empty")
        .raw_only(),
    case(
        "utf8_message",
        "<13>Mar 10 11:00:00 host app: caf\u{e9}",
        &[("message", r#""café""#)],
    ),
];

#[test]
fn rfc5424_cases() {
    check_table("rfc5424", RFC5424);
}

#[test]
fn rfc3164_cases() {
    check_table("rfc3164", RFC3164);
}

#[test]
fn json_cases() {
    check_table("json", JSON);
}

#[test]
fn cef_cases() {
    check_table("cef", CEF);
}

#[test]
fn leef_cases() {
    check_table("leef", LEEF);
}

#[test]
fn kv_cases() {
    check_table("kv", KV);
}

#[test]
fn other_cases() {
    check_table("other", OTHER);
}

/// All tables, for the tests that run every case under other configurations.
pub fn all_cases() -> impl Iterator<Item = (&'static str, &'static Case)> {
    [
        ("rfc5424", RFC5424),
        ("rfc3164", RFC3164),
        ("json", JSON),
        ("cef", CEF),
        ("leef", LEEF),
        ("kv", KV),
        ("other", OTHER),
    ]
    .into_iter()
    .flat_map(|(t, cases)| cases.iter().map(move |c| (t, c)))
}

/// Interning a name, or extracting only interned names (`FieldMode::Known`, the engine's
/// mode), must not change what the event says: every case again with every name it produced
/// interned, in both modes, and in `Known` mode with only some names interned.
#[test]
fn interning_and_known_mode_agree_with_all_mode() {
    use kuzet::event::{FieldMode, FieldTable};
    let mut failures = Vec::new();
    for (table, c) in all_cases() {
        let reference = ts(c.reference);
        let base = parse_with(c.line.as_bytes(), c.config(), FieldTable::new(), reference);
        let names: Vec<&String> = base.fields.keys().collect();
        // The parser interns the configuration's time fields too; so does the filter.
        let full = {
            let mut t = FieldTable::new();
            c.config().register(&mut t);
            for n in &names {
                t.intern(n);
            }
            t
        };
        // Every other name: exercises the skipping of JSON subtrees nobody asked for.
        let some = {
            let mut t = FieldTable::new();
            c.config().register(&mut t);
            for n in names.iter().step_by(2) {
                t.intern(n);
            }
            t
        };
        let runs = [
            ("all names interned", full.clone(), FieldMode::All),
            ("known mode, all names", full, FieldMode::Known),
            ("known mode, some names", some, FieldMode::Known),
        ];
        for (what, t, mode) in runs {
            let wanted: serde_json::Map<String, serde_json::Value> = base
                .fields
                .iter()
                .filter(|(k, _)| mode == FieldMode::All || t.get(k.as_bytes()).is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut cfg = c.config();
            cfg.mode = mode;
            let got = parse_with(c.line.as_bytes(), cfg, t, reference);
            if got.fields != wanted
                || got.error.map(|e| e.kind) != base.error.map(|e| e.kind)
                || got.time != base.time
            {
                failures.push(format!(
                    "{table}/{} ({what}):\n  want {} err={:?} time={:?}\n  got  {} err={:?} time={:?}",
                    c.name,
                    serde_json::Value::Object(wanted),
                    base.error.map(|e| e.kind),
                    base.time,
                    got.rendered,
                    got.error.map(|e| e.kind),
                    got.time,
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Files are framed by the reader, which drops the CR of CRLF line ends: the parser never
/// sees it, and nothing of it shows in any field.
#[test]
fn crlf_lines_through_the_file_reader() {
    let data = b"<13>Mar 10 11:00:00 host app: one\r\n{\"a\":\"two\"}\r\nCEF:0|V|P|1|s|n|3|act=three\r\nk=four\r\n";
    let frames = support::frames(data);
    assert_eq!(frames.len(), 4);
    let want = [
        ("message", "one"),
        ("a", "two"),
        ("act", "three"),
        ("k", "four"),
    ];
    for (frame, (field, value)) in frames.iter().zip(want) {
        let p = support::parse_line(frame, "auto", "UTC", ts(REF));
        assert!(p.error.is_none(), "{:?}: {:?}", frame, p.error);
        assert_eq!(p.fields[field], value, "{}", p.rendered);
        assert!(!p.rendered.contains("\\r"), "{}", p.rendered);
    }
}

/// simd-json stops at 1024 levels of nesting; up to there the flattening recursion must
/// fit a test thread's stack, and past it the line is a JSON error with the frame kept.
#[test]
fn deeply_nested_json() {
    for (depth, ok) in [(1000, true), (1100, false)] {
        let line = format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        let p = support::parse_line(line.as_bytes(), "auto", "UTC", ts(REF));
        assert_eq!(p.error.is_none(), ok, "depth {depth}: {:?}", p.error);
        if ok {
            assert_eq!(p.fields["a"], 1);
        } else {
            assert_eq!(p.fields["message"], line.as_str());
        }
        let line = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let p = support::parse_line(line.as_bytes(), "auto", "UTC", ts(REF));
        assert_eq!(p.error.is_none(), ok, "depth {depth}: {:?}", p.error);
        if ok {
            assert_eq!(p.fields.len(), 1);
        }
    }
}
