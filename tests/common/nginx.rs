//! A real nginx (Debian's `nginx-light`) in front of a registry on loopback, the way people build
//! "nginx caching proxy" mirrors: `proxy_cache` on `/v2/` with `X-Cache-Status:
//! $upstream_cache_status`, or (`cache: false`) a plain reverse proxy that caches nothing.
//! Everything (config, pid, logs, temp and cache dirs) lives in its own dir; it runs in the
//! foreground as root (`user root`) and is stopped on drop.

use super::daemon::Daemon;
use super::free_port;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct Nginx {
    /// Kept to stop nginx on drop.
    _daemon: Daemon,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Nginx {
    /// Proxy `127.0.0.1:<port>/v2/` to `upstream` (`host:port`), caching when `cache`.
    pub fn start(dir: &Path, upstream: &str, cache: bool) -> Nginx {
        let caching = if cache {
            // The key has the Accept header: one manifest URL answers differently per media
            // type. nginx turns a HEAD into a GET upstream and caches that.
            "proxy_cache reg;\n      proxy_cache_key \"$uri|$http_accept\";\n      \
             proxy_cache_valid 200 1h;\n      \
             add_header X-Cache-Status $upstream_cache_status always;\n"
        } else {
            ""
        };
        let locations = format!(
            "location /v2/ {{\n      proxy_pass http://{upstream};\n\
             proxy_http_version 1.1;\n      proxy_set_header Host $http_host;\n      \
             {caching}    }}\n"
        );
        Nginx::start_with(dir, &locations)
    }

    /// Serve `upstream`'s repositories the way a Harbor proxy-cache project does: only under
    /// `/v2/<project>/…` (rewritten to the upstream's `/v2/…`, query kept), the `/v2/` ping at
    /// the root, and 404 for everything else (`/v2/library/…`, `/<project>/v2/…`).
    pub fn start_project(dir: &Path, upstream: &str, project: &str) -> Nginx {
        let locations = format!(
            "location = /v2/ {{\n      proxy_pass http://{upstream};\n\
             proxy_http_version 1.1;\n      proxy_set_header Host $http_host;\n    }}\n\
             location /v2/{project}/ {{\n      rewrite ^/v2/{project}/(.*)$ /v2/$1 break;\n\
             proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n      \
             proxy_set_header Host $http_host;\n    }}\n\
             location / {{\n      return 404;\n    }}\n"
        );
        Nginx::start_with(dir, &locations)
    }

    /// nginx on a free loopback port with `locations` in its one server block.
    fn start_with(dir: &Path, locations: &str) -> Nginx {
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.display();
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let conf = format!(
                "daemon off;\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log info;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log {d}/access.log;\n\
                 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
                 scgi_temp_path {d}/scgi;\n\
                 proxy_cache_path {d}/cache levels=1:2 keys_zone=reg:1m max_size=1g \
                 inactive=1h use_temp_path=off;\n\
                 client_max_body_size 0;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    {locations}  }}\n}}\n"
            );
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut cmd = Command::new("nginx");
            cmd.arg("-e")
                .arg(dir.join("startup.log"))
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf_path);
            super::guard(&mut cmd);
            let mut daemon = Daemon::spawn("nginx", cmd, dir);
            let addr = format!("127.0.0.1:{port}");
            let up = daemon.wait_ready("listening", Duration::from_secs(20), |_| {
                std::net::TcpStream::connect(&addr).is_ok()
            });
            match up {
                Ok(()) => {
                    return Nginx {
                        _daemon: daemon,
                        port,
                        dir: dir.to_path_buf(),
                    }
                }
                Err(e) => {
                    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                    if !log.contains("Address already in use") {
                        panic!("{e}\n{log}");
                    }
                    last = log;
                }
            }
        }
        panic!("could not start nginx: {last}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx's access log so far (combined format: the request line as the client sent it).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}
