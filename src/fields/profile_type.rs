//! The profile types of the `profile_types` parameter.

use std::fmt;
use std::str::FromStr;

use crate::diagnostic::did_you_mean;

/// One kind of profile, with Go's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileType {
    /// CPU time samples.
    Cpu,
    /// A sampling of memory allocations of live objects.
    Heap,
    /// A sampling of all past memory allocations.
    Allocs,
    /// Stack traces of all current goroutines (threads/tasks here).
    Goroutine,
    /// Stack traces that led to the creation of new OS threads.
    ThreadCreate,
    /// Stack traces that led to blocking on synchronization primitives.
    Block,
    /// Stack traces of holders of contended mutexes.
    Mutex,
}

impl ProfileType {
    /// Every profile type, in the contract's order.
    pub const ALL: [ProfileType; 7] = [
        ProfileType::Cpu,
        ProfileType::Heap,
        ProfileType::Allocs,
        ProfileType::Goroutine,
        ProfileType::ThreadCreate,
        ProfileType::Block,
        ProfileType::Mutex,
    ];

    /// The names of [`ProfileType::ALL`], as written in configurations.
    pub const NAMES: [&'static str; 7] = [
        "cpu",
        "heap",
        "allocs",
        "goroutine",
        "threadcreate",
        "block",
        "mutex",
    ];

    /// The name as written in configurations (`cpu`, `threadcreate`, …).
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// A help line for an unknown name: `did you mean 'heap'?` or the list of valid names.
    pub fn help_for(name: &str) -> String {
        did_you_mean(&name.to_ascii_lowercase(), &Self::NAMES)
    }
}

impl FromStr for ProfileType {
    type Err = String;

    /// Parses a name exactly (case-sensitive, like the Go module). The error is a reason with
    /// a suggestion, such as `unknown profile type 'hep': did you mean 'heap'?`.
    fn from_str(name: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .position(|&n| n == name)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| {
                format!(
                    "unknown profile type '{name}': {}",
                    ProfileType::help_for(name)
                )
            })
    }
}

impl fmt::Display for ProfileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ProfileType::ALL {
            assert_eq!(t.as_str().parse::<ProfileType>(), Ok(t));
        }
    }

    #[test]
    fn unknown_names_suggest() {
        assert_eq!(
            "hep".parse::<ProfileType>(),
            Err("unknown profile type 'hep': did you mean 'heap'?".to_string())
        );
        assert!("CPU".parse::<ProfileType>().unwrap_err().contains("'cpu'"));
        assert!(
            "wall"
                .parse::<ProfileType>()
                .unwrap_err()
                .contains("expected one of: cpu, heap")
        );
    }
}
