//! `tidings decode`, run as the real binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tidings(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tidings");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

const CAPTURE: &[u8] = b"\xEF\xBB\xBFretry: 1500\r\n: hello\r\nid: 1\r\nevent: greet\r\ndata: hi\r\ndata: there\r\n\r\ndata: caf\xC3\xA9 \xFF\n\nid\ndata: {\"a\":1}\n\n";

const EVENTS: &str = concat!(
    r#"{"type":"greet","data":"hi\nthere","id":"1"}"#,
    "\n",
    r#"{"type":"message","data":"café �","id":"1"}"#,
    "\n",
    r#"{"type":"message","data":"{\"a\":1}","id":""}"#,
    "\n",
);

#[test]
fn decodes_stdin_to_json_lines() {
    let out = tidings(&["decode"], CAPTURE);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), EVENTS);
    assert!(out.stderr.is_empty());
}

#[test]
fn decodes_a_file_with_all_items_in_order() {
    let dir = std::env::temp_dir().join(format!("tidings-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("capture.txt");
    std::fs::write(&path, CAPTURE).unwrap();
    let out = tidings(&["decode", "--all", path.to_str().unwrap()], b"");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{out:?}");
    let expected = format!(
        "{}\n{}\n{EVENTS}",
        r#"{"retry":1500}"#, r#"{"comment":"hello"}"#
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn missing_file_is_a_clear_error_with_exit_code_2() {
    let out = tidings(&["decode", "/nonexistent/capture.txt"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot open /nonexistent/capture.txt"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unterminated_event_is_discarded_and_reported() {
    let out = tidings(&["decode"], b"data: a\n\ndata: b");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"type\":\"message\",\"data\":\"a\",\"id\":\"\"}\n"
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("ended inside an event")
    );
}
