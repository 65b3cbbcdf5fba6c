//! Groups and DAOS's attach-info file `<dir>/<group>.attach_info_tmp`:
//!
//! ```text
//! name <group>
//! size <n>
//! all
//! <rank> <uri>
//! ```
//!
//! Several servers update the file concurrently: each takes an exclusive `flock` on
//! `<dir>/.<group>.attach_info_tmp.lock`, re-reads the file, edits its own line and replaces the file
//! atomically (write to a temporary name, then rename), so readers never see a torn file and need no
//! lock. A client attaches by reading the file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daos_common::Rank;

use crate::error::CartError;

/// A group of ranks and their (tag 0) URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    name: String,
    members: BTreeMap<Rank, String>,
}

/// `<dir>/<group>.attach_info_tmp`.
pub fn attach_info_path(dir: &Path, group: &str) -> PathBuf {
    dir.join(format!("{group}.attach_info_tmp"))
}

fn io_err(path: &Path, e: impl std::fmt::Display, missing: bool) -> CartError {
    CartError::AttachInfo {
        path: path.display().to_string(),
        reason: e.to_string(),
        missing,
    }
}

impl Group {
    /// A group from a member list.
    pub fn new(name: &str, members: impl IntoIterator<Item = (Rank, String)>) -> Arc<Group> {
        Arc::new(Group {
            name: name.to_string(),
            members: members.into_iter().collect(),
        })
    }

    /// Reads `<dir>/<group>.attach_info_tmp`.
    pub fn attach(dir: &Path, name: &str) -> Result<Arc<Group>, CartError> {
        let path = attach_info_path(dir, name);
        let text = fs::read_to_string(&path).map_err(|e| {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            io_err(
                &path,
                format!(
                    "{e} (is a cart_server for group {name:?} running with --path {}?)",
                    dir.display()
                ),
                missing,
            )
        })?;
        let g = Group::parse(&text).map_err(|e| io_err(&path, e, false))?;
        if g.name != name {
            return Err(io_err(
                &path,
                format!("file names group {:?}, expected {name:?}", g.name),
                false,
            ));
        }
        Ok(Arc::new(g))
    }

    /// Parses the file format.
    pub fn parse(text: &str) -> Result<Group, String> {
        let mut name = None;
        let mut size = None;
        let mut members = BTreeMap::new();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.splitn(2, char::is_whitespace);
            let (k, v) = (it.next().unwrap_or(""), it.next().map(str::trim));
            match (k, v) {
                ("name", Some(v)) => name = Some(v.to_string()),
                ("size", Some(v)) => {
                    size = Some(
                        v.parse::<usize>()
                            .map_err(|_| format!("line {}: bad size {v:?}", no + 1))?,
                    )
                }
                ("all" | "self", None) => {}
                (r, Some(uri)) => {
                    let rank: Rank = r.parse().map_err(|_| {
                        format!("line {}: expected `<rank> <uri>`, got {line:?}", no + 1)
                    })?;
                    members.insert(rank, uri.to_string());
                }
                _ => return Err(format!("line {}: unexpected {line:?}", no + 1)),
            }
        }
        let name = name.ok_or("missing `name <group>` line")?;
        if let Some(s) = size {
            if s != members.len() {
                return Err(format!("size {s} but {} rank lines", members.len()));
            }
        }
        Ok(Group { name, members })
    }

    /// Renders the file format.
    pub fn render(&self) -> String {
        let mut s = format!("name {}\nsize {}\nall\n", self.name, self.members.len());
        for (r, u) in &self.members {
            s.push_str(&format!("{r} {u}\n"));
        }
        s
    }

    /// Group name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// URI of a rank, or `DER_OOG`.
    pub fn uri(&self, rank: Rank) -> Result<&str, CartError> {
        self.members
            .get(&rank)
            .map(String::as_str)
            .ok_or_else(|| CartError::UnknownRank {
                group: self.name.clone(),
                rank,
                members: self.members.len(),
            })
    }

    /// Member ranks in order.
    pub fn ranks(&self) -> Vec<Rank> {
        self.members.keys().copied().collect()
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }
}

/// Runs `edit` on the group file under the group's lock and rewrites it atomically.
fn update(dir: &Path, group: &str, edit: impl FnOnce(&mut Group)) -> Result<(), CartError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e, true))?;
    let path = attach_info_path(dir, group);
    let lock_path = dir.join(format!(".{group}.attach_info_tmp.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io_err(&lock_path, e, false))?;
    // std's File::lock (flock(2), stable since 1.89; this machine builds with 1.95).
    #[allow(clippy::incompatible_msrv)]
    lock.lock().map_err(|e| io_err(&lock_path, e, false))?;
    let mut g = match fs::read_to_string(&path) {
        Ok(t) => Group::parse(&t).map_err(|e| io_err(&path, e, false))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Group {
            name: group.to_string(),
            members: BTreeMap::new(),
        },
        Err(e) => return Err(io_err(&path, e, false)),
    };
    edit(&mut g);
    let tmp = dir.join(format!(".{group}.attach_info_tmp.{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(g.render().as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    drop(lock); // releases the flock
    res.map_err(|e| io_err(&path, e, false))
}

/// Adds (or replaces) `rank uri` in the group's attach-info file.
pub fn publish(dir: &Path, group: &str, rank: Rank, uri: &str) -> Result<(), CartError> {
    update(dir, group, |g| {
        g.members.insert(rank, uri.to_string());
    })
}

/// Removes `rank` from the group's attach-info file.
pub fn unpublish(dir: &Path, group: &str, rank: Rank) -> Result<(), CartError> {
    update(dir, group, |g| {
        g.members.remove(&rank);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use daos_common::{DaosErrno, Der};

    #[test]
    fn parse_render_round_trip_and_errors() {
        let g = Group::parse("name daos_server\nsize 2\nall\n0 ofi+tcp://aa\n1 ofi+tcp://bb\n")
            .unwrap();
        assert_eq!(g.name(), "daos_server");
        assert_eq!(g.uri(1).unwrap(), "ofi+tcp://bb");
        assert_eq!(Group::parse(&g.render()).unwrap(), g);
        let e = g.uri(7).unwrap_err();
        assert_eq!(e.der(), Der::Oog);
        assert!(e.to_string().contains("rank 7"), "{e}");
        assert!(Group::parse("size 1\n0 x\n").is_err());
        assert!(Group::parse("name g\nsize 3\n0 x\n")
            .unwrap_err()
            .contains("size 3"));
        assert!(Group::parse("name g\nzero x\n").is_err());
    }

    #[test]
    fn concurrent_publishers_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let hs: Vec<_> = (0..8u32)
            .map(|r| {
                let d = d.clone();
                std::thread::spawn(move || publish(&d, "grp", r, &format!("uri-{r}")).unwrap())
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let g = Group::attach(&d, "grp").unwrap();
        assert_eq!(g.size(), 8);
        assert_eq!(g.uri(5).unwrap(), "uri-5");
        unpublish(&d, "grp", 5).unwrap();
        let g = Group::attach(&d, "grp").unwrap();
        assert_eq!(g.size(), 7);
        assert!(g.uri(5).is_err());
        let e = Group::attach(&d, "nope").unwrap_err();
        assert_eq!(e.der(), Der::Badpath);
    }
}
