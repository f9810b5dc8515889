//! A real S3-compatible server for the tests (moto's standalone server, see
//! scripts/moto_server.sh), stopped when dropped, and what was stored in it, read back.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::ObjectStore;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials moto accepts (any are).
pub const ACCESS_KEY_ID: &str = "AKIAMOTOTESTKEY00001";
pub const SECRET_ACCESS_KEY: &str = "moto-test-secret-access-key-0000000000001";

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// Starts moto on a free port and waits until it answers (installing it first if needed).
    pub fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto_server.sh");
        let child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("scripts/moto_server.sh starts");
        let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}"), port };
        // A first install can take a minute; a started server answers within seconds.
        let deadline = Instant::now() + Duration::from_secs(300);
        while server.request("GET", "/", &[]).is_none() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}: see scripts/moto_server.sh"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// Creates a bucket (moto needs no signature for it).
    pub fn create_bucket(&self, bucket: &str) {
        let answer = self.request("PUT", &format!("/{bucket}"), &[]).expect("moto answers");
        assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "{answer}");
    }

    /// The `object_storage_config` of a sync that stores rejected records here.
    pub fn storage_config(&self, bucket: &str, bucket_path: &str) -> serde_json::Value {
        serde_json::json!({"storage_type": "S3", "s3_bucket_name": bucket, "s3_bucket_region": "us-east-1",
                           "bucket_path": bucket_path, "s3_endpoint": self.endpoint,
                           "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY})
    }

    /// Every object in the bucket as (path, text), sorted by path.
    pub fn objects(&self, bucket: &str) -> Vec<(String, String)> {
        let store = self.store(bucket);
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            use futures::TryStreamExt;
            let listed: Vec<_> = store.list(None).try_collect().await.expect("the bucket lists");
            let mut objects = Vec::new();
            for meta in listed {
                let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
                objects.push((meta.location.to_string(), String::from_utf8(bytes.to_vec()).unwrap()));
            }
            objects.sort();
            objects
        })
    }

    /// Every JSON line stored in the bucket, in path order.
    pub fn lines(&self, bucket: &str) -> Vec<serde_json::Value> {
        self.objects(bucket)
            .iter()
            .flat_map(|(_, text)| {
                text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect::<Vec<_>>()
            })
            .collect()
    }

    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .build()
            .unwrap()
    }

    /// A bare HTTP/1.1 request; the whole answer, or `None` when nothing listens yet.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    }
}
