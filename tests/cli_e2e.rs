//! End to end through the real binary: `lotline serve`, then `lotline load`,
//! `sql`, `flush` and `inspect` as a user would run them, with a SIGKILL and
//! restarts in between; and the gRPC `lotline.v1` API through its generated
//! tonic clients.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lotline");
const PASSWORD: &str = "e2e-secret";

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(data_dir: &Path, port: u16) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(BIN)
            .args([
                "serve",
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                // Any free port: tests run side by side.
                "--http-listen",
                "127.0.0.1:0",
            ])
            .env("LOTLINE_ADMIN_PASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start lotline serve");
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .args(["--endpoint", &format!("http://127.0.0.1:{}", self.port)])
            .env("LOTLINE_PASSWORD", PASSWORD)
            .output()
            .expect("run lotline")
    }

    /// Runs a query and returns its CSV output.
    fn sql(&self, query: &str) -> String {
        let out = self.cli(&["sql", "--format", "csv", query]);
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn load_query_kill_restart_flush_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let server = Server::start(&data, port);

    let tags = tmp.path().join("tags.csv");
    std::fs::write(
        &tags,
        "tag,unit,interpolation,percent_data_good\n\
         oven.temp,degF,linear,100\n\
         oven.door,,step,\n\
         oven.temp,degC,linear,90\n",
    )
    .unwrap();
    // The file rewrites oven.temp: a new version, which needs a reason.
    let out = server.cli(&[
        "load",
        "--reason",
        "unit corrected",
        "--table",
        "tags",
        tags.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let samples = tmp.path().join("samples.csv");
    std::fs::write(
        &samples,
        "tag,ts,value,quality,lot\n\
         oven.temp,2026-01-01T00:00:00Z,180.5,0,L-1\n\
         oven.temp,2026-01-01T00:00:01Z,181.25,0,L-1\n\
         oven.door,2026-01-01T00:00:00Z,1,0,L-1\n",
    )
    .unwrap();
    let out = server.cli(&[
        "load",
        "--table",
        "samples",
        "--batch-rows",
        "2",
        samples.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A bad value names its row and column and writes nothing.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(
        &bad,
        "tag,ts,value\nx,2026-01-01T00:00:00Z,1\nx,2026-01-01T00:00:01Z,warm\n",
    )
    .unwrap();
    let out = server.cli(&["load", "--table", "samples", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("value") && err.contains("warm"), "{err}");

    server.sql("INSERT INTO samples (tag, ts, value, quality) VALUES ('oven.temp', TIMESTAMP '2026-01-01T00:00:02Z', 182.0, 0)");

    let check = |server: &Server| {
        assert_eq!(
            server.sql("SELECT tag, unit, percent_data_good FROM tags ORDER BY tag"),
            "tag,unit,percent_data_good\noven.door,,\noven.temp,CEL,90\n"
        );
        assert_eq!(
            server.sql("SELECT count(*) AS n, sum(value) AS total FROM samples"),
            "n,total\n4,544.75\n"
        );
        assert_eq!(
            server.sql("SELECT count(*) AS n FROM samples WHERE tag = 'x'"),
            "n\n0\n"
        );
    };
    check(&server);

    // Acknowledged rows survive SIGKILL (replayed from the WAL) ...
    server.kill();
    let server = Server::start(&data, port);
    check(&server);

    // ... and a flush moves them into segments that survive too.
    let out = server.cli(&["flush"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    // 4 samples, 3 versions of tags (oven.temp twice: versions are kept)
    // and the audit_log entries of the 4 writes that loaded them.
    assert!(report.contains("\"rows_written\":11"), "{report}");
    server.kill();
    let server = Server::start(&data, port);
    check(&server);

    let out = Command::new(BIN)
        .args(["inspect", "--json", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let segments = report["manifest"]["tables"]["samples"].as_array().unwrap();
    assert_eq!(
        segments
            .iter()
            .map(|s| s["rows"].as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert!(
        segments[0]["file"]
            .as_str()
            .unwrap()
            .starts_with("tables/samples/date=2026-01-01/")
    );
    let wal_rows: u64 = report["wal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rows"].as_u64().unwrap())
        .sum();
    // Only the flush's own audit entry (the segments it wrote) is left: it
    // goes out with the next flush of data (docs/AUDIT.md, segment lineage).
    assert_eq!(wal_rows, 1, "flushed rows must leave the WAL");
    drop(server);
}

#[test]
fn refuses_wrong_password_and_second_server_on_same_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start(&data, free_port());
    let out = Command::new(BIN)
        .args([
            "sql",
            "--endpoint",
            &format!("http://127.0.0.1:{}", server.port),
            "--password",
            "wrong",
            "SELECT 1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("password") || err.contains("unauthenticated"),
        "{err}"
    );

    let second = Command::new(BIN)
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("LOTLINE_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another lotline process"));
}

/// Writes through the generated tonic client with a bearer token from a
/// Flight SQL handshake, then reads back over Flight SQL and AdminService.
#[test]
fn grpc_ingest_then_read_back() {
    use lotline::proto::admin_service_client::AdminServiceClient;
    use lotline::proto::ingest_service_client::IngestServiceClient;
    use lotline::proto::{Context, Sample, StatsRequest, WriteRequest};
    use tonic::metadata::MetadataValue;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start(&data, free_port());
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let t0 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
    let sample = |tag: &str, s: i64, value: f64| Sample {
        tag: tag.into(),
        ts_ns: t0 + s * 1_000_000_000,
        value: Some(value),
        ..Default::default()
    };
    let good = WriteRequest {
        samples: vec![
            sample("press.force", 0, 12.5),
            sample("press.force", 1, 13.0),
        ],
        context: Some(Context {
            lot: Some("L-9".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bad = WriteRequest {
        samples: vec![
            sample("press.force", 2, 1.0),
            sample("press.force", 3, f64::NAN),
        ],
        ..Default::default()
    };

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (reply, stats) = rt.block_on(async {
        let connect = lotline::client::ConnectArgs {
            endpoint: endpoint.clone(),
            user: "admin".into(),
            password: Some(PASSWORD.into()),
            no_auth: false,
            tls_ca: None,
            reason: None,
        };
        let flight = lotline::client::connect(&connect).await.unwrap();
        let bearer: MetadataValue<_> = format!("Bearer {}", flight.token().unwrap())
            .parse()
            .unwrap();
        let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();

        let mut ingest = IngestServiceClient::new(channel.clone());
        let anonymous = ingest
            .write(futures::stream::iter(vec![good.clone()]))
            .await
            .unwrap_err();
        assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
        let mut request = tonic::Request::new(futures::stream::iter(vec![good, bad]));
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        let reply = ingest.write(request).await.unwrap().into_inner();

        let mut request = tonic::Request::new(StatsRequest {});
        request.metadata_mut().insert("authorization", bearer);
        let stats = AdminServiceClient::new(channel)
            .stats(request)
            .await
            .unwrap()
            .into_inner();
        (reply, stats)
    });
    assert_eq!(
        (reply.requests, reply.accepted_requests, reply.accepted_rows),
        (2, 1, 2)
    );
    assert_eq!(reply.rejected_rows, 2);
    let error = &reply.errors[0];
    assert_eq!((error.request, error.row), (1, Some(1)));
    assert_eq!(
        (error.column.as_str(), error.value.as_str()),
        ("value", "NaN")
    );
    let samples = stats.tables.iter().find(|t| t.table == "samples").unwrap();
    assert_eq!(samples.rows, 2);
    assert!(stats.wal_bytes > 0);

    assert_eq!(
        server.sql(
            "SELECT tag, CAST(ts AS BIGINT) AS ts, value, quality, lot FROM samples ORDER BY ts"
        ),
        format!(
            "tag,ts,value,quality,lot\npress.force,{t0},12.5,0,L-9\npress.force,{},13.0,0,L-9\n",
            t0 + 1_000_000_000
        )
    );
}
