//! Endpoint tag layout of an engine (DAOS `dss_xstream` order).

use daos_common::{DaosErrno, Der, Tag};

/// Tag of the system xstream (pool and container metadata RPCs).
pub const SYS_TAG: Tag = 0;
/// Tag of the SWIM context.
pub const SWIM_TAG: Tag = 1;
/// First target tag.
pub const FIRST_TARGET_TAG: Tag = 2;

/// What a given tag of an engine serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagRole {
    /// Pool/container metadata.
    System,
    /// Failure detection.
    Swim,
    /// Target `i` (0-based): one vos instance.
    Target(u32),
    /// Helper xstream `i` (0-based).
    Helper(u32),
}

/// Errors of the tag layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The tag is beyond the engine's contexts.
    #[error("tag {tag} is not served by this engine ({targets} targets, {helpers} helpers: tags 0..{limit})")]
    NoSuchTag {
        /// Requested tag.
        tag: Tag,
        /// Targets of the engine.
        targets: u32,
        /// Helper xstreams of the engine.
        helpers: u32,
        /// One past the last valid tag.
        limit: Tag,
    },
    /// The target index is beyond the engine's targets.
    #[error("target index {index} out of range (engine has {targets} targets)")]
    NoSuchTarget {
        /// Requested index.
        index: u32,
        /// Targets of the engine.
        targets: u32,
    },
}

impl DaosErrno for TagError {
    fn der(&self) -> Der {
        Der::BadTarget
    }
}

/// The context layout of one engine: `targets` target xstreams and `helpers` helper xstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagLayout {
    /// Number of targets (DAOS `targets:` in the engine config).
    pub targets: u32,
    /// Number of helper xstreams (`nr_xs_helpers`).
    pub helpers: u32,
}

impl TagLayout {
    /// Total number of cart contexts the engine creates.
    pub fn contexts(&self) -> u32 {
        FIRST_TARGET_TAG + self.targets + self.helpers
    }

    /// The tag that serves target `index`.
    pub fn target_tag(&self, index: u32) -> Result<Tag, TagError> {
        if index >= self.targets {
            return Err(TagError::NoSuchTarget {
                index,
                targets: self.targets,
            });
        }
        Ok(FIRST_TARGET_TAG + index)
    }

    /// What `tag` serves.
    pub fn role(&self, tag: Tag) -> Result<TagRole, TagError> {
        match tag {
            SYS_TAG => Ok(TagRole::System),
            SWIM_TAG => Ok(TagRole::Swim),
            t if t < FIRST_TARGET_TAG + self.targets => Ok(TagRole::Target(t - FIRST_TARGET_TAG)),
            t if t < self.contexts() => Ok(TagRole::Helper(t - FIRST_TARGET_TAG - self.targets)),
            t => Err(TagError::NoSuchTag {
                tag: t,
                targets: self.targets,
                helpers: self.helpers,
                limit: self.contexts(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daos_layout() {
        let l = TagLayout {
            targets: 4,
            helpers: 1,
        };
        assert_eq!(l.contexts(), 7);
        assert_eq!(l.role(0), Ok(TagRole::System));
        assert_eq!(l.role(1), Ok(TagRole::Swim));
        assert_eq!(l.role(2), Ok(TagRole::Target(0)));
        assert_eq!(l.role(5), Ok(TagRole::Target(3)));
        assert_eq!(l.role(6), Ok(TagRole::Helper(0)));
        assert_eq!(l.target_tag(3), Ok(5));
    }

    #[test]
    fn out_of_range_is_a_clear_error() {
        let l = TagLayout {
            targets: 2,
            helpers: 0,
        };
        let e = l.role(4).unwrap_err();
        assert_eq!(e.der(), Der::BadTarget);
        assert!(e.to_string().contains("tag 4"), "{e}");
        assert!(l.target_tag(2).is_err());
    }

    #[test]
    fn every_target_round_trips() {
        let l = TagLayout {
            targets: 16,
            helpers: 4,
        };
        for i in 0..16 {
            assert_eq!(l.role(l.target_tag(i).unwrap()), Ok(TagRole::Target(i)));
        }
    }
}
