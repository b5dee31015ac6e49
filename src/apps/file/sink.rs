//! The file sink's writer: each [`Profile`] becomes `<dir>/<type>-<UTC timestamp>.pb.gz`,
//! written atomically, with at most `keep` files of each type kept.
//!
//! The API is synchronous and does blocking file I/O: from an async runtime, call it in a
//! blocking task (`tokio::task::spawn_blocking`) or on a dedicated thread. [`FileWriter`] is
//! cheap to clone and `Send + Sync`.
//!
//! - **Names**: `cpu-20240501T120000.123Z.pb.gz`, the timestamp being the start of the
//!   profile's window in UTC with milliseconds (basic ISO 8601: no `:` so the names are valid
//!   on every OS). Names sort in time order. When the name is taken (two windows starting in
//!   the same millisecond), `-1`, `-2`, … is added before `.pb.gz`.
//! - **Atomicity**: the bytes go to a hidden temporary file in the same directory
//!   (`.cpu-….pb.gz.<pid>.<n>.tmp`), are flushed to disk, then the file is renamed to its
//!   name. A reader never sees a partial profile; on any error the temporary file is removed.
//! - **Retention**: after each write, the files of that type beyond the newest `keep` are
//!   deleted, oldest first. Only files named like this sink's are considered; other files in
//!   the directory are never touched.
//! - The directory (and its parents) is created when needed.
//! - **Flame graphs**: [`FileWriter::write_flamegraph`] renders folded CPU stacks of one
//!   window as an SVG with `inferno`, written beside the profiles as
//!   `cpu-<timestamp>.svg` with the same atomicity and its own `keep` limit.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, UNIX_EPOCH};
//! use caddyprof::apps::file::sink::FileWriter;
//! use caddyprof::config::ProfileType;
//! use caddyprof::runtime::Profile;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let writer = FileWriter::new(dir.path().join("profiles"), 20);
//! let profile = Profile {
//!     profile_type: ProfileType::Cpu,
//!     start: UNIX_EPOCH + Duration::from_millis(1_714_564_800_123),
//!     duration: Duration::from_secs(15),
//!     pprof_gz: Arc::from(&b"\x1f\x8b"[..]),
//! };
//! let path = writer.write(&profile).unwrap();
//! assert!(path.ends_with("profiles/cpu-20240501T120000.123Z.pb.gz"));
//! ```

use crate::runtime::plan::sampling::Sampling;
use crate::runtime::sink::SinkSettings;
use crate::runtime::upload::Connections;
use std::any::Any;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use super::settings::FileSettings;
use crate::fields::ProfileType;
use crate::runtime::Profile;
use crate::runtime::sink::{Delivery, Sink, SinkFuture};
use crate::runtime::upload::UploadStats;

/// The extension of profile files.
pub const EXTENSION: &str = ".pb.gz";
/// The extension of flame graph files.
pub const SVG_EXTENSION: &str = ".svg";

/// A file operation that failed: what was being done, on which path, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct SinkError {
    /// What was being done (`create directory`, `write`, `rename to`, …).
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

impl SinkError {
    fn new(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SinkError {
        let path = path.to_path_buf();
        move |source| SinkError {
            action,
            path,
            source,
        }
    }
}

/// Writes profiles into one directory, keeping at most `keep` files per profile type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWriter {
    directory: PathBuf,
    keep: usize,
}

/// Distinguishes the temporary files of concurrent writes in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileWriter {
    /// A writer into `directory` that keeps the newest `keep` files of each type (at least 1).
    pub fn new(directory: impl Into<PathBuf>, keep: usize) -> Self {
        FileWriter {
            directory: directory.into(),
            keep: keep.max(1),
        }
    }

    /// The writer a resolved file sink describes.
    pub fn from_plan(plan: &FileSettings) -> Self {
        FileWriter::new(plan.directory.clone(), plan.keep)
    }

    /// The directory written into.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// How many files of each type are kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Writes `profile` atomically, then deletes the oldest files of its type beyond
    /// `keep`. Returns the path written. Blocking: see the module documentation.
    pub fn write(&self, profile: &Profile) -> Result<PathBuf, SinkError> {
        let path = self.write_file(
            &file_name(profile.profile_type, profile.start),
            &profile.pprof_gz,
        )?;
        self.prune(profile.profile_type)?;
        Ok(path)
    }

    /// Writes `bytes` atomically as `name` in the directory (a free variant of it when
    /// taken), creating the directory when needed.
    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, SinkError> {
        fs::create_dir_all(&self.directory)
            .map_err(SinkError::new("create directory", &self.directory))?;
        let temp = self.directory.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = write_synced(&temp, bytes).and_then(|()| {
            let target = self.free_name(name);
            fs::rename(&temp, &target)
                .map(|()| target.clone())
                .map_err(SinkError::new("rename a temporary file to", &target))
        });
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// `name` in the directory, or `stem-1.pb.gz`, `stem-2.pb.gz`, … if taken.
    fn free_name(&self, name: &str) -> PathBuf {
        let path = self.directory.join(name);
        if !path.exists() {
            return path;
        }
        let (stem, extension) = [EXTENSION, SVG_EXTENSION]
            .into_iter()
            .find_map(|ext| Some((name.strip_suffix(ext)?, ext)))
            .unwrap_or((name, ""));
        (1u64..)
            .map(|n| self.directory.join(format!("{stem}-{n}{extension}")))
            .find(|p| !p.exists())
            .unwrap_or(path)
    }

    /// Renders the folded CPU stacks of one window (`("main;work;spin", samples)`) as an
    /// SVG flame graph and writes it atomically as `cpu-<timestamp of start>.svg`, then
    /// deletes the oldest flame graphs beyond `keep`. Returns `None`, writing nothing, when
    /// there is no sample. Blocking.
    pub fn write_flamegraph(
        &self,
        start: SystemTime,
        duration: std::time::Duration,
        folded: &[(String, u64)],
    ) -> Result<Option<PathBuf>, SinkError> {
        let name = format!("cpu-{}{SVG_EXTENSION}", utc_timestamp(start));
        let title = format!(
            "CPU, {} UTC, {:.3} s",
            utc_timestamp(start),
            duration.as_secs_f64()
        );
        let Some(svg) = flamegraph_svg(&title, folded).map_err(SinkError::new(
            "render a flame graph for",
            &self.directory.join(&name),
        ))?
        else {
            return Ok(None);
        };
        let path = self.write_file(&name, &svg)?;
        self.prune_with(ProfileType::Cpu, SVG_EXTENSION)?;
        Ok(Some(path))
    }

    /// The flame graph files in the directory, oldest first.
    pub fn flamegraphs(&self) -> Result<Vec<PathBuf>, SinkError> {
        self.files_with(ProfileType::Cpu, SVG_EXTENSION)
    }

    /// The profile files of `profile_type` in the directory, oldest first.
    pub fn files(&self, profile_type: ProfileType) -> Result<Vec<PathBuf>, SinkError> {
        self.files_with(profile_type, EXTENSION)
    }

    fn files_with(
        &self,
        profile_type: ProfileType,
        extension: &str,
    ) -> Result<Vec<PathBuf>, SinkError> {
        let entries = match fs::read_dir(&self.directory) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SinkError::new("list", &self.directory)(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(SinkError::new("list", &self.directory))?;
            let name = entry.file_name();
            let Some(key) = name
                .to_str()
                .and_then(|n| sort_key(n, profile_type, extension))
            else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push((key, entry.path()));
            }
        }
        files.sort();
        Ok(files.into_iter().map(|(_, path)| path).collect())
    }

    /// Deletes the oldest files of `profile_type` beyond `keep`; returns those deleted.
    pub fn prune(&self, profile_type: ProfileType) -> Result<Vec<PathBuf>, SinkError> {
        self.prune_with(profile_type, EXTENSION)
    }

    fn prune_with(
        &self,
        profile_type: ProfileType,
        extension: &str,
    ) -> Result<Vec<PathBuf>, SinkError> {
        let files = self.files_with(profile_type, extension)?;
        let excess = files.len().saturating_sub(self.keep);
        let mut deleted = Vec::with_capacity(excess);
        for path in files.into_iter().take(excess) {
            match fs::remove_file(&path) {
                Ok(()) => deleted.push(path),
                // Someone else removed it: the goal is reached.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SinkError::new("delete", &path)(e)),
            }
        }
        Ok(deleted)
    }
}

/// A running file sink: its writer, and whether it writes flame graphs of CPU windows.
#[derive(Clone, Debug)]
pub struct WritingSink {
    /// Where the profiles go.
    pub writer: FileWriter,
    /// Whether an SVG flame graph of each CPU window is written beside its profile.
    pub flamegraph: bool,
}

impl WritingSink {
    /// The sink a resolved file sink describes.
    pub fn from_plan(plan: &FileSettings) -> Self {
        WritingSink {
            writer: FileWriter::from_plan(plan),
            flamegraph: plan.flamegraph,
        }
    }

    /// Writes a profile, and its flame graph when asked; returns the paths written.
    fn write(&self, profile: &Profile) -> Result<Vec<PathBuf>, String> {
        let writer = &self.writer;
        let mut paths = vec![writer.write(profile).map_err(|e| e.to_string())?];
        if self.flamegraph && profile.profile_type == ProfileType::Cpu {
            let decoded = crate::profile::decode(&profile.pprof_gz).map_err(|e| e.to_string())?;
            let folded = crate::profile::fold(&decoded, 0);
            if let Some(path) = writer
                .write_flamegraph(profile.start, profile.duration, &folded)
                .map_err(|e| e.to_string())?
            {
                paths.push(path);
            }
        }
        Ok(paths)
    }
}

impl Sink for WritingSink {
    /// Writes on a blocking thread: a file system may be slow.
    fn deliver(&self, profile: Profile) -> SinkFuture<'_, Delivery> {
        let sink = self.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || sink.write(&profile)).await {
                Ok(Ok(paths)) => Delivery::Written(paths),
                Ok(Err(message)) => Delivery::Failed(message),
                Err(join) => Delivery::Failed(format!("writing task failed: {join}")),
            }
        })
    }

    /// Nothing to flush: every profile is written when delivered.
    fn stop(&self, _: std::time::Duration) -> SinkFuture<'_, Option<UploadStats>> {
        Box::pin(std::future::ready(None))
    }
}

impl Default for FileWriter {
    /// The defaults of the field table: `./profiles`, keeping 20 files per type.
    fn default() -> Self {
        let keep = super::KEEP.default_count().unwrap_or(1);
        FileWriter::new(
            super::DIRECTORY.default.unwrap_or_default(),
            usize::try_from(keep).unwrap_or(usize::MAX),
        )
    }
}

/// Creates `path` (which must not exist), writes `bytes` and flushes them to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(SinkError::new("create", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(SinkError::new("write", path))
}

/// The file name of a profile of `profile_type` whose window starts at `start`:
/// `cpu-20240501T120000.123Z.pb.gz`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use caddyprof::apps::file::sink::file_name;
/// use caddyprof::config::ProfileType;
///
/// let at = UNIX_EPOCH + Duration::from_millis(951_782_400_007);
/// assert_eq!(file_name(ProfileType::Heap, at), "heap-20000229T000000.007Z.pb.gz");
/// ```
pub fn file_name(profile_type: ProfileType, start: SystemTime) -> String {
    format!("{profile_type}-{}{EXTENSION}", utc_timestamp(start))
}

/// `start` in UTC as `YYYYMMDDTHHMMSS.mmmZ` (times before 1970 are written as 1970).
pub fn utc_timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// For a file name of this sink with `profile_type`, its order: the timestamp, then the
/// collision number. `None` for any other name.
fn sort_key(name: &str, profile_type: ProfileType, extension: &str) -> Option<(String, u64)> {
    let rest = name
        .strip_prefix(profile_type.as_str())?
        .strip_prefix('-')?
        .strip_suffix(extension)?;
    let (stamp, n) = match rest.split_once('-') {
        Some((stamp, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (stamp, n.parse().ok()?)
        }
        Some(_) => return None,
        None => (rest, 0),
    };
    is_timestamp(stamp).then(|| (stamp.to_owned(), n))
}

/// An SVG flame graph of `folded` stacks (frames separated by `;`, with their sample
/// counts), or `None` when there is no sample. Newlines in frame names become spaces.
pub fn flamegraph_svg(title: &str, folded: &[(String, u64)]) -> io::Result<Option<Vec<u8>>> {
    let lines: Vec<String> = folded
        .iter()
        .filter(|(stack, count)| *count > 0 && !stack.trim().is_empty())
        .map(|(stack, count)| format!("{} {count}", stack.replace(['\n', '\r'], " ")))
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    render_svg(title, &lines).map(Some)
}

/// `lines` of folded stacks with their counts drawn as an SVG flame graph.
#[cfg(feature = "flamegraph")]
fn render_svg(title: &str, lines: &[String]) -> io::Result<Vec<u8>> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_owned();
    options.count_name = "samples".to_owned();
    options.deterministic = true;
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}

/// Without the renderer, a config asking for flame graphs gets this error each window (the
/// profiles themselves are still written).
#[cfg(not(feature = "flamegraph"))]
fn render_svg(_title: &str, _lines: &[String]) -> io::Result<Vec<u8>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this caddyprof was built without its `flamegraph` feature: enable the feature, or \
         remove `flamegraph` from the file sink",
    ))
}

/// Whether `text` has the shape `YYYYMMDDTHHMMSS.mmmZ`.
fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b[8] == b'T'
        && b[15] == b'.'
        && b[19] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 15 | 19) || c.is_ascii_digit())
}

impl SinkSettings for FileSettings {
    fn path(&self) -> &str {
        &self.path
    }

    fn sampling(&self) -> &Sampling {
        &self.sampling
    }

    fn window(&self) -> Duration {
        self.interval
    }

    fn start(&self, _: &Connections) -> Result<Box<dyn Sink>, String> {
        Ok(Box::new(WritingSink::from_plan(self)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn profile(profile_type: ProfileType, millis: u64, bytes: &[u8]) -> Profile {
        Profile {
            profile_type,
            start: UNIX_EPOCH + Duration::from_millis(millis),
            duration: Duration::from_secs(10),
            pprof_gz: Arc::from(bytes),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn timestamps() {
        let at = |ms| utc_timestamp(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "19700101T000000.000Z");
        assert_eq!(at(1_714_564_800_123), "20240501T120000.123Z");
        assert_eq!(at(951_868_799_999), "20000229T235959.999Z");
        assert_eq!(at(4_107_542_400_000), "21000301T000000.000Z");
        assert_eq!(
            utc_timestamp(UNIX_EPOCH - Duration::from_secs(5)),
            "19700101T000000.000Z"
        );
        assert!(is_timestamp(&at(1_714_564_800_123)));
    }

    #[test]
    fn names_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(dir.path(), 5);
        let path = writer
            .write(&profile(ProfileType::Cpu, 1_714_564_800_123, b"one"))
            .unwrap();
        assert_eq!(path, dir.path().join("cpu-20240501T120000.123Z.pb.gz"));
        assert_eq!(fs::read(&path).unwrap(), b"one");
        // The same start again: a numbered name, nothing overwritten.
        let again = writer
            .write(&profile(ProfileType::Cpu, 1_714_564_800_123, b"two"))
            .unwrap();
        assert_eq!(again, dir.path().join("cpu-20240501T120000.123Z-1.pb.gz"));
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::read(&again).unwrap(), b"two");
        writer
            .write(&profile(ProfileType::ThreadCreate, 0, b""))
            .unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "cpu-20240501T120000.123Z-1.pb.gz",
                "cpu-20240501T120000.123Z.pb.gz",
                "threadcreate-19700101T000000.000Z.pb.gz",
            ]
        );
        // Oldest first, the numbered one after the one it collided with.
        assert_eq!(writer.files(ProfileType::Cpu).unwrap(), [path, again]);
    }

    #[test]
    fn no_temporary_files_are_left() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(dir.path(), 3);
        for i in 0..10 {
            writer
                .write(&profile(ProfileType::Heap, 1000 * i, &[7; 4096]))
                .unwrap();
        }
        let names = names(dir.path());
        assert_eq!(names.len(), 3);
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with('.') && n.ends_with(".pb.gz"))
        );
        for name in names {
            assert_eq!(fs::read(dir.path().join(name)).unwrap(), [7; 4096]);
        }
    }

    #[test]
    fn a_name_taken_by_a_directory_is_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(dir.path(), 3);
        let name = file_name(ProfileType::Cpu, UNIX_EPOCH);
        fs::create_dir(dir.path().join(&name)).unwrap();
        fs::write(dir.path().join(&name).join("x"), b"kept").unwrap();
        let path = writer
            .write(&profile(ProfileType::Cpu, 0, b"data"))
            .unwrap();
        assert_eq!(path, dir.path().join("cpu-19700101T000000.000Z-1.pb.gz"));
        assert_eq!(fs::read(dir.path().join(&name).join("x")).unwrap(), b"kept");
        // Retention counts regular files only.
        assert_eq!(writer.files(ProfileType::Cpu).unwrap(), [path]);
    }

    #[test]
    fn retention_per_type_deletes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(dir.path(), 2);
        fs::write(dir.path().join("cpu-notes.pb.gz"), b"mine").unwrap();
        fs::write(dir.path().join("README"), b"mine").unwrap();
        for (i, t) in [ProfileType::Cpu, ProfileType::Allocs]
            .into_iter()
            .cycle()
            .take(8)
            .enumerate()
        {
            writer.write(&profile(t, 1_000 * i as u64, b"p")).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            [
                "README",
                "allocs-19700101T000005.000Z.pb.gz",
                "allocs-19700101T000007.000Z.pb.gz",
                "cpu-19700101T000004.000Z.pb.gz",
                "cpu-19700101T000006.000Z.pb.gz",
                "cpu-notes.pb.gz",
            ]
        );
        // Pruning again deletes nothing.
        assert!(writer.prune(ProfileType::Cpu).unwrap().is_empty());
        // A smaller limit deletes the oldest.
        let deleted = FileWriter::new(dir.path(), 1)
            .prune(ProfileType::Cpu)
            .unwrap();
        assert_eq!(deleted, [dir.path().join("cpu-19700101T000004.000Z.pb.gz")]);
        assert_eq!(FileWriter::new(dir.path(), 0).keep(), 1);
    }

    #[test]
    fn creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        let writer = FileWriter::new(&nested, 20);
        assert!(writer.files(ProfileType::Cpu).unwrap().is_empty());
        writer.write(&profile(ProfileType::Cpu, 0, b"x")).unwrap();
        assert_eq!(names(&nested), ["cpu-19700101T000000.000Z.pb.gz"]);
    }

    #[test]
    fn unwritable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"").unwrap();
        // A directory below a regular file cannot exist, even for root.
        let writer = FileWriter::new(file.join("profiles"), 20);
        let error = writer
            .write(&profile(ProfileType::Cpu, 0, b"x"))
            .unwrap_err();
        assert_eq!(error.action, "create directory");
        assert!(
            error.to_string().starts_with(&format!(
                "cannot create directory {}: ",
                file.join("profiles").display()
            )),
            "{error}"
        );
        // The directory itself being a file: creating it fails too.
        let error = FileWriter::new(&file, 20)
            .write(&profile(ProfileType::Cpu, 0, b"x"))
            .unwrap_err();
        assert_eq!(error.action, "create directory");
        assert_eq!(names(dir.path()), ["a-file"]);
    }

    #[test]
    fn from_plan_and_default() {
        let plan = FileSettings {
            path: "apps.profiling.profilers[0]".into(),
            directory: "/tmp/x".into(),
            interval: Duration::from_secs(1),
            keep: 4,
            flamegraph: false,
            sampling: crate::runtime::plan::Sampling {
                profile_types: vec![ProfileType::Cpu],
                cpu_hz: 100,
                block_rate: 0,
                mutex_fraction: 0,
            },
        };
        assert_eq!(FileWriter::from_plan(&plan), FileWriter::new("/tmp/x", 4));
        let default = FileWriter::default();
        assert_eq!(
            (default.directory(), default.keep()),
            (Path::new("./profiles"), 20)
        );
    }

    #[test]
    #[cfg(feature = "flamegraph")]
    fn flamegraphs() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(dir.path(), 2);
        let folded = vec![
            ("main;work;spin".to_owned(), 30),
            ("main;idle\nnext".to_owned(), 10),
            ("main;never".to_owned(), 0),
        ];
        let start = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        let path = writer
            .write_flamegraph(start, Duration::from_secs(15), &folded)
            .unwrap()
            .unwrap();
        assert_eq!(path, dir.path().join("cpu-20240501T120000.123Z.svg"));
        let svg = fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..100]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "spin",
            "work",
            "idle next",
            "20240501T120000.123Z UTC, 15.000 s",
        ] {
            assert!(svg.contains(text), "{text} not in the SVG");
        }
        assert!(!svg.contains("never"));
        // No sample: nothing written.
        assert_eq!(
            writer
                .write_flamegraph(start, Duration::from_secs(1), &[("a".into(), 0)])
                .unwrap(),
            None
        );
        assert_eq!(flamegraph_svg("t", &[]).unwrap(), None);
        // Retention applies to flame graphs separately from profiles.
        writer.write(&profile(ProfileType::Cpu, 0, b"p")).unwrap();
        for i in 1..=3 {
            let at = start + Duration::from_secs(i);
            writer
                .write_flamegraph(at, Duration::from_secs(1), &folded)
                .unwrap();
        }
        let kept = writer.flamegraphs().unwrap();
        assert_eq!(
            kept,
            [
                dir.path().join("cpu-20240501T120002.123Z.svg"),
                dir.path().join("cpu-20240501T120003.123Z.svg"),
            ]
        );
        assert_eq!(writer.files(ProfileType::Cpu).unwrap().len(), 1);
        assert!(names(dir.path()).iter().all(|n| !n.ends_with(".tmp")));
    }

    #[test]
    #[cfg(not(feature = "flamegraph"))]
    fn without_the_renderer_a_flame_graph_is_an_error_naming_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(dir.path(), 2);
        let error = writer
            .write_flamegraph(UNIX_EPOCH, Duration::from_secs(1), &[("main".into(), 1)])
            .unwrap_err();
        assert!(
            error.to_string().contains("`flamegraph` feature"),
            "{error}"
        );
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn sort_keys() {
        let key = |n| sort_key(n, ProfileType::Cpu, EXTENSION);
        assert_eq!(
            key("cpu-20240501T120000.123Z-12.pb.gz"),
            Some(("20240501T120000.123Z".into(), 12))
        );
        for other in [
            "cpu-20240501T120000.123Z.pb",
            "cpu-20240501T120000.123Z-.pb.gz",
            "cpu-20240501T120000.123Z-x.pb.gz",
            "heap-20240501T120000.123Z.pb.gz",
            ".cpu-20240501T120000.123Z.pb.gz.1.2.tmp",
            "cpu-2024050xT120000.123Z.pb.gz",
        ] {
            assert_eq!(key(other), None, "{other}");
        }
    }
}
