//! Keeping credentials out of every log line, error body and panic message.
//!
//! Two layers: [`redact_uri`] rewrites a connection string for display, and a process-wide
//! list of known secrets ([`register_secret`]) is scrubbed from every log line ([`ScrubbingWriter`])
//! and every error message that might quote a driver or AWS error ([`scrub`]).

use std::io::{self, Write};
use std::sync::{OnceLock, RwLock};

const REDACTED: &str = "<redacted>";

/// Connection-string options whose values are credentials.
const SECRET_OPTIONS: &[&str] = &["authmechanismproperties", "tlscertificatekeyfilepassword"];

fn secrets() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Remembers a value that must never be printed. Short values are ignored: scrubbing "a" from
/// every line would destroy the logs and protect nothing.
pub fn register_secret(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    if let Ok(mut list) = secrets().write() {
        if !list.iter().any(|s| s == secret) {
            list.push(secret.to_owned());
            // Longest first, so a secret that contains another is replaced whole.
            list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// Registers a connection string's credentials: its user info (raw and percent-decoded), the
/// values of its secret options, and the whole URI when it holds any of them (one that holds none
/// stays readable: its hosts are what a message about a failure must name).
pub fn register_uri(uri: &str) {
    if redact_uri(uri) != uri {
        register_secret(uri);
    }
    let Some((_, rest)) = uri.split_once("://") else {
        register_secret(uri);
        return;
    };
    let (userinfo, after) = split_userinfo(rest);
    if let Some(userinfo) = userinfo {
        register_secret(userinfo);
        if let Some((user, password)) = userinfo.split_once(':') {
            register_secret(password);
            register_secret(&percent_decode(password));
            register_secret(&percent_decode(user));
        }
    }
    if let Some((_, query)) = after.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if SECRET_OPTIONS.contains(&key.to_ascii_lowercase().as_str()) {
                    register_secret(value);
                    register_secret(&percent_decode(value));
                }
            }
        }
    }
}

/// Splits what follows `scheme://` into the user info, if any, and the rest. The user info
/// ends at the *last* `@`: a password may hold an unescaped `/`, `?`, `:` or `@`, and cutting at
/// the first `/` would print it. (An `@` in an option value makes this over-redact the hosts,
/// which is the safe way to be wrong.)
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// Replaces every registered secret in `text` with `<redacted>`.
pub fn scrub(text: &str) -> String {
    let Ok(list) = secrets().read() else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    for secret in list.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// A connection string fit for a log line: the credentials and secret option values replaced.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return REDACTED.to_owned();
    };
    let (userinfo, after) = split_userinfo(rest);
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let (hosts, tail) = after.split_at(authority_end);
    let hosts = match userinfo {
        Some(_) => format!("{REDACTED}@{hosts}"),
        None => hosts.to_owned(),
    };
    let tail = match tail.split_once('?') {
        None => tail.to_owned(),
        Some((path, query)) => {
            let options: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _))
                        if SECRET_OPTIONS.contains(&key.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{key}={REDACTED}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", options.join("&"))
        }
    };
    format!("{scheme}://{hosts}{tail}")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A log writer that scrubs registered secrets from each formatted line before writing it.
pub struct ScrubbingWriter<W>(pub W);

impl<W: Write> Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_uri_hides_credentials_and_secret_options() {
        assert_eq!(
            redact_uri(
                "mongodb+srv://app:s3cr%40t@cluster0.example.net/app?retryWrites=true&authMechanismProperties=AWS_SESSION_TOKEN:abc"
            ),
            "mongodb+srv://<redacted>@cluster0.example.net/app?retryWrites=true&authMechanismProperties=<redacted>"
        );
        assert_eq!(
            redact_uri("mongodb://localhost:27017"),
            "mongodb://localhost:27017"
        );
        assert_eq!(redact_uri("not a uri"), "<redacted>");
        // Unescaped '/', '?' and '@' in a password: still hidden.
        for uri in [
            "mongodb://leakuser:Pa55/LEAK@127.0.0.1:27017/",
            "mongodb://leakuser:Pa55?LEAK@127.0.0.1:27017/",
            "mongodb://leakuser:Pa55@LEAK@127.0.0.1:27017/db?x=1",
        ] {
            let shown = redact_uri(uri);
            assert!(
                !shown.contains("LEAK") && shown.contains("127.0.0.1:27017"),
                "{shown}"
            );
        }
    }

    #[test]
    fn scrub_removes_registered_uri_parts_in_any_encoding() {
        register_uri("mongodb://alice:p%40ssw0rd-XYZ@db.internal:27017/?authSource=admin");
        let line = "auth failed for alice:p%40ssw0rd-XYZ (password p@ssw0rd-XYZ)";
        let scrubbed = scrub(line);
        assert!(!scrubbed.contains("ssw0rd"), "{scrubbed}");
    }

    #[test]
    fn a_uri_without_credentials_stays_readable_in_messages() {
        register_uri("mongodb+srv://cluster0.readable.example/?retryWrites=true");
        assert_eq!(
            scrub("cannot resolve mongodb+srv://cluster0.readable.example/?retryWrites=true"),
            "cannot resolve mongodb+srv://cluster0.readable.example/?retryWrites=true"
        );
        register_uri("mongodb://u:pw-in-a-uri-42@h.example/");
        assert!(!scrub("mongodb://u:pw-in-a-uri-42@h.example/").contains("pw-in-a-uri-42"));
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        register_secret("ab");
        assert_eq!(scrub("abc"), "abc");
    }
}
