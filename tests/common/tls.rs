//! A CA and a leaf certificate for `127.0.0.1` signed by it, made with the `openssl` CLI (a
//! server cert must not be a CA: webpki refuses one). Check `openssl` with [`super::require`].

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    /// The CA certificate (PEM): what a client must trust.
    pub ca: PathBuf,
    /// The leaf certificate (PEM, SAN IP:127.0.0.1) and its key, for the server.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// Write `ca.pem`, `cert.pem`, `key.pem` (and the CA key, CSR, serial) into `dir`.
    pub fn make(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        let ossl = |args: &str| {
            let out = Command::new("openssl")
                .current_dir(dir)
                .args(args.split(' '))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        ossl(&format!(
            "req -x509 -days 2 -subj /CN=mirrorctl-test-CA -keyout ca.key -out ca.pem {ec}"
        ));
        ossl(&format!(
            "req -subj /CN=127.0.0.1 -keyout key.pem -out leaf.csr {ec}"
        ));
        std::fs::write(
            dir.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        ossl(
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile ext -out cert.pem",
        );
        Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}
