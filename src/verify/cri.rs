//! A CRI client for `verify --client cri` where the node has no `crictl`: `ImageService/
//! PullImage` over containerd's socket, the call kubelet makes. Behind the `cri` cargo feature
//! (its bindings need protoc to build); without it, only `crictl` can run the probe.

use std::path::Path;
use std::time::Duration;

/// Pull `image` through the CRI image service at `socket`; the image's reference (digest) as
/// the runtime reports it.
#[cfg(feature = "cri")]
pub fn pull(socket: &Path, image: &str, timeout: Duration) -> Result<String, String> {
    use hyper_util::rt::TokioIo;
    use k8s_cri::v1::image_service_client::ImageServiceClient;
    use k8s_cri::v1::{ImageSpec, PullImageRequest};
    use tonic::transport::{Endpoint, Uri};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime for the CRI client: {e}"))?;
    let path = socket.to_path_buf();
    rt.block_on(async move {
        let channel = Endpoint::from_static("http://[::]")
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .map_err(|e| format!("cannot reach the CRI socket `{}`: {e}", socket.display()))?;
        let mut client = ImageServiceClient::new(channel);
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        };
        let resp = client
            .pull_image(req)
            .await
            .map_err(|s| format!("CRI PullImage of {image} failed: {}", s.message()))?;
        Ok(resp.into_inner().image_ref)
    })
}

/// Without the `cri` feature there is no built-in CRI client.
#[cfg(not(feature = "cri"))]
pub fn pull(_socket: &Path, _image: &str, _timeout: Duration) -> Result<String, String> {
    Err("this mirrorctl has no CRI client (built without the `cri` feature) and `crictl` is not on PATH: install crictl, or build mirrorctl with `--features cri`".into())
}

/// Whether this build has the built-in CRI client.
pub const BUILT_IN: bool = cfg!(feature = "cri");
