//! Reload from a Kubernetes ConfigMap volume: the kubelet never edits the
//! mounted file; it writes a new timestamped directory, points a temporary
//! symlink at it and renames that over `..data`, which `config.toml`
//! (`-> ..data/config.toml`) resolves through. The gateway must pick up each
//! swap, and keep its running configuration when the new file is invalid.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::process::{config, Gateway};
use crate::support::{TempDir, TestUpstream};

/// Writes `..<stamp>/config.toml` and makes it the mounted version the way
/// the kubelet does: a new symlink renamed over `..data` (atomic), then the
/// old version's directory removed.
fn swap_in(volume: &Path, stamp: &str, text: &str, previous: Option<&str>) {
    let version = volume.join(format!("..{stamp}"));
    std::fs::create_dir(&version).expect("create the version directory");
    std::fs::write(version.join("config.toml"), text).expect("write the version");
    let staged = volume.join("..data_tmp");
    symlink(format!("..{stamp}"), &staged).expect("stage ..data_tmp");
    std::fs::rename(&staged, volume.join("..data")).expect("rename over ..data");
    if let Some(previous) = previous {
        std::fs::remove_dir_all(volume.join(format!("..{previous}")))
            .expect("remove the old version");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swaps_reload_and_an_invalid_swap_keeps_the_config() {
    let upstream = TestUpstream::start().await;
    let volume = TempDir::new("configmap");
    let first = "2026_01_01_00_00_00.1";
    swap_in(volume.path(), first, &config(upstream.addr, "v1"), None);
    let config_path = volume.path().join("config.toml");
    symlink("..data/config.toml", &config_path).expect("link config.toml");
    let gateway = Gateway::start_at(volume, config_path.clone(), "json").await;
    assert_eq!(gateway.status_body().await, "v1");

    let volume = config_path.parent().expect("volume dir").to_owned();
    let second = "2026_01_01_00_01_00.2";
    swap_in(&volume, second, &config(upstream.addr, "v2"), Some(first));
    gateway.wait_for_status("v2").await;
    gateway.wait_reloads("ok", 1.0).await;

    let third = "2026_01_01_00_02_00.3";
    swap_in(&volume, third, "[server]\nlisten = 42\n", Some(second));
    gateway.wait_reloads("failed", 1.0).await;
    gateway
        .wait_logged("keeping the running configuration")
        .await;
    assert_eq!(
        gateway.status_body().await,
        "v2",
        "the running config stays"
    );
    assert_eq!(gateway.reloads("ok").await, 1.0);

    let fourth = "2026_01_01_00_03_00.4";
    swap_in(&volume, fourth, &config(upstream.addr, "v3"), Some(third));
    gateway.wait_for_status("v3").await;
    assert_eq!(gateway.reloads("ok").await, 2.0);
    assert_eq!(gateway.reloads("failed").await, 1.0);
}
