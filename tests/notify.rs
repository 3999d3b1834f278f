//! Notifications reach each kind of receiver, run on 127.0.0.1: Slack/Mattermost-style
//! webhooks, ntfy, a Telegram Bot API, mail through SMTP; and a dead receiver never
//! fails a backup.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use common::{assert_ok, text, Env, Kind};

/// One HTTP request as a receiver saw it.
#[derive(Debug)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server on 127.0.0.1 that answers 200 to everything and reports each request.
fn http_receiver() -> (String, Receiver<Request>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let len = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = s;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
            let _ = tx.send(Request {
                line: line.trim().to_string(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
    });
    (url, rx)
}

/// A minimal SMTP server on 127.0.0.1 that accepts every message and reports its
/// envelope recipients and data.
fn smtp_receiver() -> (u16, Receiver<(Vec<String>, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut say = |t: &str| w.write_all(format!("{t}\r\n").as_bytes()).unwrap();
            say("220 localhost ESMTP test");
            let (mut rcpt, mut data) = (Vec::new(), String::new());
            loop {
                let mut cmd = String::new();
                if r.read_line(&mut cmd).unwrap_or(0) == 0 {
                    break;
                }
                let upper = cmd.to_ascii_uppercase();
                if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    say("250 localhost");
                } else if upper.starts_with("RCPT TO:") {
                    rcpt.push(cmd[8..].trim().to_string());
                    say("250 OK");
                } else if upper.starts_with("DATA") {
                    say("354 go on");
                    loop {
                        let mut l = String::new();
                        r.read_line(&mut l).unwrap();
                        if l == ".\r\n" {
                            break;
                        }
                        data.push_str(&l);
                    }
                    say("250 queued");
                } else if upper.starts_with("QUIT") {
                    say("221 bye");
                    break;
                } else {
                    say("250 OK");
                }
            }
            let _ = tx.send((rcpt, data));
        }
    });
    (port, rx)
}

fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} received nothing"))
}

/// A port nobody listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stack_file(env: &Env, path: &str, notify: &str) {
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\n[[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\n\
             path = \"{path}\"\n[stack.shop.notify]\ntimeout = \"3s\"\n{notify}"
        ),
    )
    .unwrap();
}

#[test]
fn a_failure_reaches_chat_ntfy_telegram_and_mail_with_the_stack_and_the_error() {
    let env = Env::init(Kind::Local).unwrap();
    let (slack, slack_rx) = http_receiver();
    let (ntfy, ntfy_rx) = http_receiver();
    let (tg, tg_rx) = http_receiver();
    let (smtp, smtp_rx) = smtp_receiver();
    let token = env.path("telegram.token");
    std::fs::write(&token, "123:SECRET\n").unwrap();
    let missing = env.path("no-such-dir");
    stack_file(
        &env,
        missing.to_str().unwrap(),
        &format!(
            "slack = \"{slack}/hooks/abc\"\nntfy = \"{ntfy}/drctl-shop\"\n\
             telegram = {{ chat_id = \"-100\", token_file = \"{}\", api = \"{tg}\" }}\n\
             email = {{ smtp = \"smtp://127.0.0.1:{smtp}\", from = \"drctl@host.test\", \
             to = [\"ops@host.test\"] }}\n",
            token.display()
        ),
    );
    let o = env.run(&["backup", "shop"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains("notification"), "a delivery failed: {err}");

    let s = recv(&slack_rx, "the Slack webhook");
    assert_eq!(s.line, "POST /hooks/abc HTTP/1.1");
    let v: serde_json::Value = serde_json::from_str(&s.body).unwrap();
    let t = v["text"].as_str().unwrap();
    assert!(
        t.contains("stack shop FAILED") && t.contains("no-such-dir"),
        "{t}"
    );

    let n = recv(&ntfy_rx, "ntfy");
    assert_eq!(n.line, "POST /drctl-shop HTTP/1.1");
    assert!(
        n.header("Title").unwrap().contains("stack shop FAILED"),
        "{n:?}"
    );
    assert_eq!(n.header("Priority"), Some("high"));
    assert_eq!(n.header("Tags"), Some("failure"));
    assert!(n.body.contains("no-such-dir"), "{n:?}");

    let g = recv(&tg_rx, "the Telegram API");
    assert_eq!(g.line, "POST /bot123:SECRET/sendMessage HTTP/1.1");
    let v: serde_json::Value = serde_json::from_str(&g.body).unwrap();
    assert_eq!(v["chat_id"], "-100");
    let t = v["text"].as_str().unwrap();
    assert!(
        t.contains("stack shop FAILED") && t.contains("no-such-dir"),
        "{t}"
    );

    let (rcpt, data) = recv(&smtp_rx, "the SMTP server");
    assert_eq!(rcpt, ["<ops@host.test>"]);
    assert!(data.contains("Subject: drctl: stack shop FAILED"), "{data}");
    assert!(data.contains("no-such-dir"), "{data}");

    // By default the chat and mail channels hear failures, not successes.
    std::fs::create_dir_all(&missing).unwrap();
    std::fs::write(missing.join("a"), "x").unwrap();
    assert_ok(&env.run(&["backup", "shop"]));
    assert!(slack_rx.recv_timeout(Duration::from_secs(1)).is_err());
}

#[test]
fn dead_receivers_cost_warnings_never_the_backup() {
    let env = Env::init(Kind::Local).unwrap();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a"), "x").unwrap();
    let token = env.path("telegram.token");
    std::fs::write(&token, "123:SECRET\n").unwrap();
    let dead = |p: &str| format!("http://127.0.0.1:{}{p}", dead_port());
    stack_file(
        &env,
        data.to_str().unwrap(),
        &format!(
            "events = [\"success\", \"failure\"]\nslack = \"{}\"\nntfy = \"{}\"\n\
             telegram = {{ chat_id = \"1\", token_file = \"{}\", api = \"{}\" }}\n\
             email = {{ smtp = \"smtp://127.0.0.1:{}\", from = \"a@b.test\", to = [\"c@d.test\"] }}\n",
            dead("/hook"),
            dead("/topic"),
            token.display(),
            dead(""),
            dead_port()
        ),
    );
    let t = std::time::Instant::now();
    let o = env.run(&["backup", "shop"]);
    assert_ok(&o);
    let err = text(&o.stderr);
    assert_eq!(err.matches("notification").count(), 4, "{err}");
    assert!(
        !err.contains("SECRET"),
        "a warning shows the bot token: {err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "dead receivers held the backup up"
    );
    assert_eq!(env.snapshot_count(), 1);
}

#[test]
fn malformed_notify_settings_are_errors_at_their_place() {
    let env = Env::init(Kind::Local).unwrap();
    for (notify, needle) in [
        ("ntfy = \"ftp://x/t\"\n", "not an http:// or https:// URL"),
        ("events = [\"failed\"]\n", "unknown event \"failed\""),
        (
            "email = { smtp = \"smtp://u:p@h\", from = \"a@b.c\", to = [\"d@e.f\"] }\n",
            "carries credentials",
        ),
        (
            "email = { smtp = \"smtp://h\", from = \"not an address\", to = [\"d@e.f\"] }\n",
            "is not valid",
        ),
        ("telegram = { chat_id = \"1\" }\n", "token_file"),
    ] {
        stack_file(&env, "/tmp", notify);
        let o = env.run(&["config", "check"]);
        common::assert_fails(&o, 2, needle);
        assert!(
            text(&o.stderr).contains("shop.toml:"),
            "{}",
            text(&o.stderr)
        );
    }
}
