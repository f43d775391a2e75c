//! `bench-driver-floor URI DATABASE COLLECTION FIELD VALUE COUNT [cursor|command]`: the driver's
//! own CPU per findOne, with no HTTP around it. The benchmark runs it in turns with the sidecar to show how
//! much of the sidecar's CPU per request the driver takes by itself.
//!
//! It sends findOne as the sidecar does (`find` with `limit: 1`, `singleBatch: true` and a
//! `maxTimeMS`, through `run_raw_cursor_command`, on a current-thread runtime), `COUNT` times in
//! turn after a warm-up, and prints one JSON line: CPU (user, system) and wall time per findOne
//! from `getrusage`, for the whole process. A second figure does the same through
//! `run_raw_command`, the cheapest call the driver offers (no cursor). The last argument runs only
//! one of the two (under callgrind, for instructions per findOne).
//!
//! Build: `make bench-driver-floor`.

use std::time::{Duration, Instant};

use bson::{RawDocumentBuf, rawdoc};
use mongodb::{Client, Database};

const WARM_UP: u32 = 500;

#[derive(Clone, Copy)]
enum Call {
    Cursor,
    Command,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Cursor => "cursor",
            Call::Command => "command",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (calls, args) = match args.as_slice() {
        [rest @ .., last] if last == "cursor" => (&[Call::Cursor][..], rest),
        [rest @ .., last] if last == "command" => (&[Call::Command][..], rest),
        all => (&[Call::Cursor, Call::Command][..], all),
    };
    let [uri, database, collection, field, value, count] = args else {
        eprintln!(
            "usage: bench-driver-floor URI DATABASE COLLECTION FIELD VALUE COUNT [cursor|command]"
        );
        std::process::exit(2);
    };
    let Ok(count) = count.parse::<u32>() else {
        eprintln!("COUNT must be a number, not {count:?}");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e));
    runtime.block_on(async {
        let client = Client::with_uri_str(uri).await.unwrap_or_else(|e| fail(&e));
        let db = client.database(database);
        let command = rawdoc! {
            "find": collection.as_str(),
            "filter": { field.as_str(): value.as_str() },
            "limit": 1,
            "singleBatch": true,
        };
        let mut out = format!("{{\"requests\":{count}");
        for &call in calls {
            let figures = measure(&db, &command, call, count).await;
            out.push_str(&format!(",\"{}\":{}", call.name(), figures.json()));
        }
        println!("{out}}}");
    });
}

struct Figures {
    user: Duration,
    system: Duration,
    wall: Duration,
    count: u32,
}

impl Figures {
    fn json(&self) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(self.count);
        format!(
            "{{\"cpu_us\":{:.2},\"user_us\":{:.2},\"system_us\":{:.2},\"wall_us\":{:.2}}}",
            per(self.user + self.system),
            per(self.user),
            per(self.system),
            per(self.wall)
        )
    }
}

async fn measure(db: &Database, command: &RawDocumentBuf, call: Call, count: u32) -> Figures {
    for _ in 0..WARM_UP.min(count) {
        find_one(db, command, call).await;
    }
    let (user, system) = cpu();
    let started = Instant::now();
    for _ in 0..count {
        find_one(db, command, call).await;
    }
    let wall = started.elapsed();
    let (user_after, system_after) = cpu();
    Figures {
        user: user_after - user,
        system: system_after - system,
        wall,
        count,
    }
}

/// One findOne; exits when it fails or finds nothing, as the figures would then be of something
/// else.
async fn find_one(db: &Database, command: &RawDocumentBuf, call: Call) {
    let mut sent = command.clone();
    sent.append("maxTimeMS", 30_000);
    let found = match call {
        Call::Cursor => {
            let mut cursor = db
                .run_raw_cursor_command(sent)
                .await
                .unwrap_or_else(|e| fail(&e))
                .with_type::<RawDocumentBuf>();
            match cursor.advance().await {
                Ok(true) => Some(cursor.current().to_owned()),
                Ok(false) => None,
                Err(e) => fail(&e),
            }
        }
        Call::Command => {
            let reply = db.run_raw_command(sent).await.unwrap_or_else(|e| fail(&e));
            reply
                .get_document("cursor")
                .ok()
                .and_then(|c| c.get_array("firstBatch").ok())
                .and_then(|batch| batch.first())
                .and_then(|d| d.as_document())
                .and_then(|d| bson::to_raw_document_buf(d).ok())
        }
    };
    if found.is_none() {
        fail(&"the filter matched no document");
    }
}

/// The process's user and system CPU so far.
fn cpu() -> (Duration, Duration) {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (time(usage.ru_utime), time(usage.ru_stime))
}

fn fail(error: &dyn std::fmt::Display) -> ! {
    eprintln!("bench-driver-floor: {error}");
    std::process::exit(1);
}
