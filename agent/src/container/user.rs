//! Resolving the container's user, as containerd does for Kubernetes.
//!
//! `runAsUser`/`runAsGroup` win over the image's `User` (`name`, `uid`,
//! `name:group`, `uid:gid`, mixed). Names are looked up in the container's
//! own `/etc/passwd` and `/etc/group`. A user found in passwd brings its
//! primary gid; a numeric uid that is not there gets gid 0. Supplementary
//! groups are the primary gid, every group that lists the user as a member,
//! then the pod's `supplementalGroups`.

use std::fs;
use std::io::Read;
use std::path::Path;

/// The resolved identity of a container process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Why the user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error("invalid user specification {0:?}")]
    Invalid(String),
}

/// The user-related settings of a container.
#[derive(Debug, Clone, Default)]
pub struct UserRequest<'a> {
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub image_user: Option<&'a str>,
    pub supplemental_groups: &'a [u32],
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Largest passwd/group file read from an image.
const MAX_DB_SIZE: u64 = 4 * 1024 * 1024;

/// Reads `<root>/<rel>`; a missing file, a symlink (which would resolve
/// outside the image here) or an unreadable one count as empty.
pub fn read_image_file(root: &Path, rel: &str) -> String {
    let path = root.join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => {}
        _ => return String::new(),
    }
    let mut text = String::new();
    if let Ok(file) = fs::File::open(&path) {
        let _ = file.take(MAX_DB_SIZE).read_to_string(&mut text);
    }
    text
}

/// Resolves the identity against the image root at `root`.
pub fn resolve_in(root: &Path, req: &UserRequest<'_>) -> Result<Identity, UserError> {
    let passwd = read_image_file(root, "etc/passwd");
    let group = read_image_file(root, "etc/group");
    resolve(&passwd, &group, req)
}

/// Resolves the identity from the text of passwd and group files.
pub fn resolve(passwd: &str, group: &str, req: &UserRequest<'_>) -> Result<Identity, UserError> {
    let users: Vec<PasswdEntry<'_>> = passwd.lines().filter_map(parse_passwd).collect();
    let groups: Vec<GroupEntry<'_>> = group.lines().filter_map(parse_group).collect();

    let (user_part, group_part) = match (req.run_as_user, req.image_user) {
        (Some(uid), _) => (uid.to_string(), None),
        (None, Some(spec)) if !spec.trim().is_empty() => match spec.trim().split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (spec.trim().to_string(), None),
        },
        (None, _) => ("0".to_string(), None),
    };
    if user_part.is_empty() {
        return Err(UserError::Invalid(
            req.image_user.unwrap_or_default().to_string(),
        ));
    }

    let (uid, entry) = match user_part.parse::<u32>() {
        Ok(uid) => (uid, users.iter().find(|u| u.uid == uid)),
        Err(_) => {
            let entry = users
                .iter()
                .find(|u| u.name == user_part)
                .ok_or_else(|| UserError::NoSuchUser(user_part.clone()))?;
            (entry.uid, Some(entry))
        }
    };

    let gid = match (req.run_as_group, group_part.as_deref()) {
        (Some(gid), _) => gid,
        (None, Some(g)) if !g.is_empty() => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                groups
                    .iter()
                    .find(|e| e.name == g)
                    .ok_or_else(|| UserError::NoSuchGroup(g.to_string()))?
                    .gid
            }
        },
        _ => entry.map_or(0, |e| e.gid),
    };

    let mut list = vec![gid];
    if let Some(entry) = entry {
        for g in &groups {
            if g.name != entry.name && g.members.contains(&entry.name) {
                list.push(g.gid);
            }
        }
    }
    list.extend_from_slice(req.supplemental_groups);
    let mut groups_out = Vec::with_capacity(list.len());
    for g in list {
        if !groups_out.contains(&g) {
            groups_out.push(g);
        }
    }
    Ok(Identity {
        uid,
        gid,
        groups: groups_out,
    })
}

fn parse_passwd(line: &str) -> Option<PasswdEntry<'_>> {
    if line.starts_with('#') {
        return None;
    }
    let mut fields = line.split(':');
    let name = fields.next()?;
    let _password = fields.next()?;
    let uid = fields.next()?.trim().parse().ok()?;
    let gid = fields.next()?.trim().parse().ok()?;
    Some(PasswdEntry { name, uid, gid })
}

fn parse_group(line: &str) -> Option<GroupEntry<'_>> {
    if line.starts_with('#') {
        return None;
    }
    let mut fields = line.split(':');
    let name = fields.next()?;
    let _password = fields.next()?;
    let gid = fields.next()?.trim().parse().ok()?;
    let members = fields
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    Some(GroupEntry { name, gid, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# c\nbroken\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nother:x:3000:root, app\n";

    fn req(user: Option<&str>) -> UserRequest<'_> {
        UserRequest {
            image_user: user,
            ..Default::default()
        }
    }

    fn id(uid: u32, gid: u32, groups: &[u32]) -> Identity {
        Identity {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn image_user_forms() {
        assert_eq!(
            resolve(PASSWD, GROUP, &req(None)).unwrap(),
            id(0, 0, &[0, 3000])
        );
        assert_eq!(
            resolve(PASSWD, GROUP, &req(Some("app"))).unwrap(),
            id(1000, 1000, &[1000, 2000, 3000])
        );
        assert_eq!(
            resolve(PASSWD, GROUP, &req(Some("1000"))).unwrap(),
            id(1000, 1000, &[1000, 2000, 3000])
        );
        assert_eq!(
            resolve(PASSWD, GROUP, &req(Some("app:extra"))).unwrap(),
            id(1000, 2000, &[2000, 3000])
        );
        assert_eq!(
            resolve(PASSWD, GROUP, &req(Some("4242:7"))).unwrap(),
            id(4242, 7, &[7])
        );
        assert_eq!(
            resolve(PASSWD, GROUP, &req(Some("4242"))).unwrap(),
            id(4242, 0, &[0])
        );
        assert!(matches!(
            resolve(PASSWD, GROUP, &req(Some("nobody"))),
            Err(UserError::NoSuchUser(_))
        ));
        assert!(matches!(
            resolve(PASSWD, GROUP, &req(Some("app:nogroup"))),
            Err(UserError::NoSuchGroup(_))
        ));
    }

    #[test]
    fn security_context_wins() {
        let r = UserRequest {
            run_as_user: Some(1000),
            run_as_group: Some(5000),
            image_user: Some("root"),
            supplemental_groups: &[6000, 2000],
        };
        assert_eq!(
            resolve(PASSWD, GROUP, &r).unwrap(),
            id(1000, 5000, &[5000, 2000, 3000, 6000])
        );
        let r = UserRequest {
            run_as_user: Some(777),
            ..Default::default()
        };
        assert_eq!(resolve(PASSWD, GROUP, &r).unwrap(), id(777, 0, &[0]));
    }

    #[test]
    fn missing_files_mean_numeric_only() {
        assert_eq!(resolve("", "", &req(Some("5"))).unwrap(), id(5, 0, &[0]));
        assert!(resolve("", "", &req(Some("app"))).is_err());
    }
}
