//! The file sink: JSON lines appended to a file, rotated by size. At `rotate_bytes` the file
//! becomes `path.1` (the older ones shift to `path.2` … `path.<keep>`, the oldest is deleted)
//! and a new file starts, so disk use is bounded by `(keep + 1) × rotate_bytes`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::Sink;
use super::alert::AlertRecord;

pub struct FileSink {
    path: PathBuf,
    rotate_bytes: u64,
    keep: usize,
    out: BufWriter<File>,
    size: u64,
}

fn open(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let size = f.metadata()?.len();
    Ok((BufWriter::with_capacity(1 << 16, f), size))
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl FileSink {
    pub fn open(path: &Path, rotate_bytes: u64, keep: usize) -> io::Result<FileSink> {
        let (out, size) = open(path)?;
        Ok(FileSink {
            path: path.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1),
            keep,
            out,
            size,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 0 {
            fs::remove_file(&self.path)?;
        } else {
            let _ = fs::remove_file(numbered(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = numbered(&self.path, n);
                if from.exists() {
                    fs::rename(&from, numbered(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        let (out, size) = open(&self.path)?;
        self.out = out;
        self.size = size;
        Ok(())
    }
}

impl Sink for FileSink {
    fn write(&mut self, line: &[u8], _: &AlertRecord) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.rotate_bytes {
            self.rotate()?;
        }
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn close(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;
    use std::sync::Arc;

    fn rec() -> AlertRecord {
        AlertRecord {
            id: 1,
            meta: Arc::new(crate::sigma::Meta::default()),
            kind: "detection",
            group: Vec::new(),
            count: 1,
            metric: None,
            revision: 0,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            detected_at: Timestamp(0),
            events: Vec::new(),
            received: None,
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.jsonl");
        let mut s = FileSink::open(&p, 100, 2).unwrap();
        let line = [b'x'; 39];
        let mut line = line.to_vec();
        line.push(b'\n');
        for _ in 0..20 {
            s.write(&line, &rec()).unwrap();
        }
        s.close().unwrap();
        // 40-byte lines, 100-byte files: two lines per file.
        assert_eq!(fs::metadata(&p).unwrap().len(), 80);
        assert_eq!(fs::metadata(numbered(&p, 1)).unwrap().len(), 80);
        assert_eq!(fs::metadata(numbered(&p, 2)).unwrap().len(), 80);
        assert!(!numbered(&p, 3).exists());
        // Reopening appends.
        let mut s = FileSink::open(&p, 1000, 2).unwrap();
        s.write(&line, &rec()).unwrap();
        s.close().unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 120);
    }
}
