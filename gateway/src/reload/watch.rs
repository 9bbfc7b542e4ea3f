//! What triggers a reload on its own: files changing on disk (the config file, descriptor
//! sets, `.proto` files and folders, the operations folder, backends' TLS files; debounced)
//! and the periodic re-fetch of descriptors registered by server reflection.
//!
//! Files are watched through their folder, so that a file replaced by a rename (editors,
//! Kubernetes ConfigMaps swapping their `..data` link) is seen like one written in place. The
//! set of watched paths is computed again after every reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Reloader, Trigger};
use crate::config::{Config, DescriptorKind};

/// The files and folders whose change means a reload: absolute, without duplicates.
pub(super) fn watched_paths(cfg: &Config, config_file: &Path) -> Vec<PathBuf> {
    let mut paths = vec![config_file.to_path_buf()];
    for src in &cfg.descriptors {
        match src.kind() {
            Some(DescriptorKind::File(p)) => paths.push(cfg.resolve_path(&p)),
            Some(DescriptorKind::Proto { path, .. }) => paths.push(cfg.resolve_path(&path)),
            Some(DescriptorKind::Reflection(_)) | None => {}
        }
    }
    if let Some(dir) = &cfg.operations.dir {
        paths.push(cfg.resolve_path(dir));
    }
    for backend in cfg.backends.values() {
        if let Some(tls) = &backend.tls {
            for p in [&tls.ca, &tls.cert, &tls.key].into_iter().flatten() {
                paths.push(cfg.resolve_path(p));
            }
        }
    }
    let mut paths: Vec<PathBuf> = paths
        .into_iter()
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Whether a change at `changed` concerns one of `watched`: the path itself, something inside
/// a watched folder, or a Kubernetes-style `..data` swap beside a watched file.
pub(super) fn concerns(watched: &[PathBuf], changed: &Path) -> bool {
    watched.iter().any(|w| {
        changed.starts_with(w)
            || (changed.parent() == w.parent()
                && changed
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("..")))
    })
}

/// Where to put a watch for `path`: a folder recursively, a file through its folder.
fn watch_target(path: &Path) -> (PathBuf, RecursiveMode) {
    if path.is_dir() {
        (path.to_path_buf(), RecursiveMode::Recursive)
    } else {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (parent.to_path_buf(), RecursiveMode::NonRecursive)
    }
}

/// Watches the current config's files and reloads when they change, until the runtime ends.
pub(super) async fn watch_files(reloader: Arc<Reloader>) {
    let mut generation = reloader.generation.subscribe();
    loop {
        let snapshot = reloader.gateway.snapshot();
        let cfg = &snapshot.config;
        if !cfg.reload.watch {
            reloader.next_generation(&mut generation).await;
            continue;
        }
        let debounce = cfg.reload.debounce.get();
        let watched = watched_paths(cfg, &reloader.source.path);
        drop(snapshot);
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                )
            {
                for p in event.paths {
                    let _ = tx.send(p);
                }
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files; reload with SIGHUP or POST /admin/reload");
                return;
            }
        };
        let mut targets: Vec<(PathBuf, RecursiveMode)> =
            watched.iter().map(|p| watch_target(p)).collect();
        targets.sort_by(|a, b| a.0.cmp(&b.0));
        targets.dedup_by(|a, b| a.0 == b.0);
        for (target, mode) in &targets {
            if let Err(e) = watcher.watch(target, *mode) {
                tracing::warn!(path = %target.display(), error = %e, "cannot watch this path for changes");
            }
        }
        tracing::debug!(paths = ?watched, "watching files for changes");
        // Wait for a change that concerns us, or for a reload from elsewhere (new paths).
        let first = tokio::select! {
            p = next_concerning(&mut rx, &watched) => p,
            () = reloader.next_generation(&mut generation) => continue,
        };
        let Some(first) = first else {
            return; // the watcher stopped
        };
        let mut changed = vec![first];
        // Debounce: wait until the files have been quiet for `debounce`.
        while let Ok(Some(p)) = tokio::time::timeout(debounce, rx.recv()).await {
            if concerns(&watched, &p) && !changed.contains(&p) {
                changed.push(p);
            }
        }
        drop(watcher);
        changed.sort();
        reloader.reload(Trigger::Files(changed)).await;
        // Our own reload bumped the generation: start from it.
        generation.borrow_and_update();
    }
}

async fn next_concerning(
    rx: &mut mpsc::UnboundedReceiver<PathBuf>,
    watched: &[PathBuf],
) -> Option<PathBuf> {
    loop {
        let p = rx.recv().await?;
        if concerns(watched, &p) {
            return Some(p);
        }
    }
}

/// Fetches reflection descriptors again every `reload.reflection_interval`, swapping in a new
/// snapshot only when they changed, until the runtime ends.
pub(super) async fn poll_reflection(reloader: Arc<Reloader>) {
    let mut generation = reloader.generation.subscribe();
    loop {
        let (interval, reflects) = {
            let snapshot = reloader.gateway.snapshot();
            let cfg = &snapshot.config;
            (
                cfg.reload.reflection_interval.get(),
                cfg.descriptors.iter().any(|d| d.reflection.is_some()),
            )
        };
        if !reflects || interval == Duration::ZERO {
            reloader.next_generation(&mut generation).await;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {
                reloader.reload(Trigger::ReflectionPoll).await;
                generation.borrow_and_update();
            }
            () = reloader.next_generation(&mut generation) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn changes_beside_a_watched_file_concern_it_only_when_they_are_its_own_or_a_data_swap() {
        let watched = vec![
            PathBuf::from("/etc/bff/config.yaml"),
            PathBuf::from("/srv/protos"),
        ];
        assert!(concerns(&watched, Path::new("/etc/bff/config.yaml")));
        assert!(concerns(&watched, Path::new("/etc/bff/..data")));
        assert!(concerns(
            &watched,
            Path::new("/etc/bff/..2026_12_03_17_00_00.123")
        ));
        assert!(!concerns(&watched, Path::new("/etc/bff/other.yaml")));
        assert!(!concerns(&watched, Path::new("/etc/bff/config.yaml.swp")));
        assert!(concerns(
            &watched,
            Path::new("/srv/protos/demo/v1/users.proto")
        ));
        assert!(!concerns(&watched, Path::new("/srv/protos2/x.proto")));
    }

    #[test]
    fn the_config_descriptors_operations_and_backend_tls_files_are_watched() {
        let cfg = crate::config::parse(
            r#"
descriptors:
  - file: descriptors/demo.binpb
  - proto: protos
  - file: descriptors/demo.binpb
operations: { dir: ops }
backends:
  users:
    endpoints: ["https://127.0.0.1:1"]
    services: [demo.v1.UserService]
    tls: { ca: ca.pem }
"#,
            "bff.yaml",
            Path::new("/cfg"),
        )
        .unwrap();
        let w = watched_paths(&cfg, Path::new("/cfg/bff.yaml"));
        assert_eq!(
            w,
            vec![
                PathBuf::from("/cfg/bff.yaml"),
                PathBuf::from("/cfg/ca.pem"),
                PathBuf::from("/cfg/descriptors/demo.binpb"),
                PathBuf::from("/cfg/ops"),
                PathBuf::from("/cfg/protos"),
            ]
        );
    }
}
