//! Frames the producer published (as its `FrameMeta` says) that this seat never took.
//!
//! A frame's metadata can arrive before the consumer takes that very frame (the post
//! comes first, then the message, and the queue is drained before the next take), so a
//! seq is judged only once a frame at least as new has been taken: then it was taken or it
//! never will be. Seqs whose metadata was dropped (a full queue: the seqs jump) are judged
//! the same way. Per region: a move to a new region judges what is left and starts again.

use std::collections::VecDeque;

/// At most this many seqs wait to be judged (the rest are counted untaken at once).
const MAX_PENDING: usize = 4096;

/// The counter.
#[derive(Debug, Default)]
pub(crate) struct Untaken {
    /// Seqs published and not judged yet, oldest first.
    pending: VecDeque<u64>,
    /// Recently taken seqs, oldest first (those still needed to judge `pending`).
    taken: VecDeque<u64>,
    /// The newest seq the metadata named.
    last_meta: Option<u64>,
    /// Judged untaken so far.
    count: u64,
}

impl Untaken {
    /// The producer says it published `seq`.
    pub(crate) fn published(&mut self, seq: u64) {
        let first = match self.last_meta {
            Some(last) if seq <= last => return, // Old or repeated news.
            Some(last) => last + 1,
            None => seq,
        };
        self.last_meta = Some(seq);
        for s in first..=seq {
            if self.pending.len() >= MAX_PENDING {
                self.count += 1;
            } else {
                self.pending.push_back(s);
            }
            // A gap longer than the window is counted without a loop per frame.
            if seq - s > MAX_PENDING as u64 {
                self.count += seq - s - MAX_PENDING as u64;
                self.pending.extend(seq - MAX_PENDING as u64 + 1..=seq);
                break;
            }
        }
        self.judge();
    }

    /// This seat took frame `seq`.
    pub(crate) fn took(&mut self, seq: u64) {
        if self.taken.back().is_none_or(|&last| seq > last) {
            self.taken.push_back(seq);
        }
        self.judge();
    }

    /// A move to a new region: what is left was never taken here.
    pub(crate) fn new_region(&mut self) {
        self.count += self.pending.len() as u64;
        self.pending.clear();
        self.taken.clear();
        self.last_meta = None;
    }

    /// Judged untaken so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    fn judge(&mut self) {
        let Some(&newest_taken) = self.taken.back() else {
            return;
        };
        while let Some(&seq) = self.pending.front() {
            if seq > newest_taken {
                break;
            }
            self.pending.pop_front();
            while self.taken.front().is_some_and(|&t| t < seq) {
                self.taken.pop_front();
            }
            if self.taken.front() != Some(&seq) {
                self.count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_was_published_and_never_taken() {
        let mut u = Untaken::default();
        // Metadata first, frame after: not untaken.
        u.published(1);
        u.took(1);
        assert_eq!(u.count(), 0);
        // 2 and 3 published, only 3 taken.
        u.published(2);
        u.published(3);
        u.took(3);
        assert_eq!(u.count(), 1);
        // 4..=9 dropped from the queue (jump to 10), 7 taken, then 10.
        u.took(7);
        u.published(10);
        u.took(10);
        assert_eq!(u.count(), 1 + 5);
        // Published, not taken yet: not judged until a newer take or a move.
        u.published(11);
        assert_eq!(u.count(), 6);
        u.new_region();
        assert_eq!(u.count(), 7);
        // A new region starts afresh.
        u.published(1);
        u.took(1);
        assert_eq!(u.count(), 7);
    }

    #[test]
    fn a_huge_gap_is_counted_without_a_loop_per_frame() {
        let mut u = Untaken::default();
        u.published(1);
        u.took(1);
        u.published(1 << 40);
        u.took(1 << 40);
        assert_eq!(u.count(), (1 << 40) - 2);
    }
}
