// tokio_echo: the Tokio peer for echo benchmarks: a task per connection, a
// 4 KiB buffer, read then write_all (the same shape as examples/echo).
//
//   tokio_echo --addr=127.0.0.1:9000 --flavor=current_thread|multi_thread [--threads=N]
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn serve(addr: String) {
    let listener = TcpListener::bind(&addr).await.expect("bind");
    loop {
        let (mut sock, _) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => continue,
        };
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let n = match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn main() {
    let mut addr = String::from("127.0.0.1:9000");
    let mut flavor = String::from("current_thread");
    let mut threads: usize = 1;
    for a in std::env::args().skip(1) {
        if let Some(v) = a.strip_prefix("--addr=") {
            addr = v.to_string();
        } else if let Some(v) = a.strip_prefix("--flavor=") {
            flavor = v.to_string();
        } else if let Some(v) = a.strip_prefix("--threads=") {
            threads = v.parse().expect("--threads");
        } else {
            eprintln!("usage: tokio_echo [--addr=host:port] [--flavor=current_thread|multi_thread] [--threads=N]");
            std::process::exit(2);
        }
    }
    let rt = match flavor.as_str() {
        "current_thread" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        "multi_thread" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
        _ => {
            eprintln!("tokio_echo: unknown --flavor {}", flavor);
            std::process::exit(2);
        }
    }
    .expect("runtime");
    eprintln!("tokio_echo: flavor {} threads {}", flavor, threads);
    rt.block_on(serve(addr));
}
