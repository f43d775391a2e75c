//! Why a server could not be reached, in words a user setting up Atlas, a VPC or an IP access list
//! can act on: a refused connection, a certificate nobody trusts, a name DNS cannot resolve,
//! credentials the server refuses, a server that never answers. Never a credential.

use std::error::Error as _;
use std::io;

use mongodb::error::{Error, ErrorKind};

use crate::redact::scrub;

/// One line for an error on the way to the server. `server` names the address when known.
pub fn describe(err: &Error, server: Option<&str>) -> String {
    let at = server.map(|s| format!("{s}: ")).unwrap_or_default();
    let text = match err.kind.as_ref() {
        ErrorKind::Io(io) => format!("{at}{}", describe_io(io)),
        ErrorKind::DnsResolve { message, .. } => format!("DNS lookup failed: {message}"),
        ErrorKind::Authentication { message, .. } => {
            format!("{at}authentication failed: {message}")
        }
        ErrorKind::Command(e) => {
            format!(
                "{at}the server answered {} ({}): {}",
                e.code_name, e.code, e.message
            )
        }
        ErrorKind::ServerSelection { .. } => {
            "no server answered within the server selection timeout".to_owned()
        }
        ErrorKind::ConnectionPoolCleared { .. } => {
            format!("{at}the connection pool was cleared after a network error")
        }
        _ => format!("{at}{err}"),
    };
    scrub(&text)
}

fn describe_io(err: &io::Error) -> String {
    use io::ErrorKind as Kind;
    // A TLS failure arrives as an I/O error whose source is the TLS library's own error.
    let inner = err.get_ref().map(|e| e.to_string()).unwrap_or_default();
    if inner.contains("certificate") || inner.contains("handshake") {
        return format!(
            "TLS handshake failed: {inner} (is the server's CA trusted? set tlsCAFile for a private CA)"
        );
    }
    match err.kind() {
        Kind::ConnectionRefused => {
            "connection refused: nothing listens there, or a firewall rejects the connection"
                .to_owned()
        }
        Kind::TimedOut | Kind::WouldBlock => {
            "timed out: no answer from the server (a security group, an IP access list or a missing route drops the packets)".to_owned()
        }
        Kind::ConnectionReset | Kind::ConnectionAborted | Kind::BrokenPipe | Kind::UnexpectedEof => {
            "the server closed the connection".to_owned()
        }
        Kind::HostUnreachable | Kind::NetworkUnreachable => {
            format!("no route to the server: {err}")
        }
        _ if err.to_string().contains("lookup") || err.to_string().contains("resolve") => {
            format!("DNS lookup failed: {err}")
        }
        _ => match err.source() {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error(kind: io::ErrorKind) -> Error {
        Error::from(io::Error::from(kind))
    }

    #[test]
    fn each_network_failure_names_its_cause() {
        let refused = describe(
            &io_error(io::ErrorKind::ConnectionRefused),
            Some("db:27017"),
        );
        assert!(
            refused.starts_with("db:27017: connection refused"),
            "{refused}"
        );
        let timeout = describe(&io_error(io::ErrorKind::TimedOut), None);
        assert!(timeout.contains("timed out"), "{timeout}");
        let tls = describe(
            &Error::from(io::Error::new(
                io::ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            )),
            None,
        );
        assert!(
            tls.contains("TLS") && tls.contains("UnknownIssuer"),
            "{tls}"
        );
        let dns = describe(
            &Error::from(io::Error::other(
                "failed to lookup address information: Name or service not known",
            )),
            None,
        );
        assert!(dns.starts_with("DNS lookup failed"), "{dns}");
    }
}
