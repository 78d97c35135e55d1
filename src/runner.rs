//! The detection path: parse → extract → match → correlation hits.
//!
//! [`Stage`] is what one thread does with one frame: it owns every per-event buffer and
//! writes hits into one [`HitBatch`] per correlator shard. The daemon runs one `Stage` per
//! worker thread and ships the batches to shard threads (`pipeline/`); [`Runner`] couples a
//! `Stage` with a single [`Shard`] on the same thread, for `kuzet replay` and `kuzet test`,
//! where order and determinism matter more than parallelism.

use std::sync::Arc;

use crate::correlator::shard::{CorrAlert, Shard};
use crate::correlator::{HitBatch, HitScratch, HitStats};
use crate::engine::Engine;
use crate::event::{Event, EventBuf, FieldMode, Timestamp};
use crate::matcher::{RuleId, Scratch};
use crate::parser::{ParseErrorKind, Parser, ParserConfig};

/// Counters of a stage.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    pub events: u64,
    pub parse_errors: [u64; ParseErrorKind::ALL.len()],
    /// Events with no time of their own (receive time used).
    pub no_time: u64,
    /// Events dated too far after their receive time (receive time used).
    pub future: u64,
    /// Events some extractor gave fields to.
    pub extracted: u64,
    /// Rule matches (an event matching three rules counts three).
    pub matches: u64,
    pub hits: HitStats,
}

/// Parse, extract, match and route hits, for one thread.
pub struct Stage {
    pub engine: Arc<Engine>,
    /// One parser per input (listener or file), each with that input's format and zone.
    parsers: Vec<Parser>,
    buf: EventBuf,
    scratch: Scratch,
    matched: Vec<RuleId>,
    /// One per correlator shard.
    pub batches: Vec<HitBatch>,
    hit_scratch: HitScratch,
    max_future_ms: i64,
    pub stats: RunStats,
}

impl Stage {
    /// `inputs` are the parser configs of the inputs (their mode is forced to `Known`; the
    /// engine must have been built for them); `shards` the number of hit batches;
    /// `max_future_ms` how far after its receive time an event may be dated before the
    /// receive time is used instead.
    pub fn new(
        engine: Arc<Engine>,
        inputs: &[ParserConfig],
        shards: usize,
        max_future_ms: i64,
    ) -> Stage {
        let parsers = inputs
            .iter()
            .map(|p| {
                Parser::new(
                    engine.table.clone(),
                    ParserConfig {
                        mode: FieldMode::Known,
                        ..p.clone()
                    },
                )
            })
            .collect();
        Stage {
            engine,
            parsers,
            buf: EventBuf::new(),
            scratch: Scratch::new(),
            matched: Vec::new(),
            batches: (0..shards.max(1)).map(|_| HitBatch::default()).collect(),
            hit_scratch: HitScratch::default(),
            max_future_ms,
            stats: RunStats::default(),
        }
    }

    /// Parses and matches one frame of input `input`. Rules whose own matches are alerts
    /// are reported through `on_detection(rule, event time)`; correlation hits are appended
    /// to [`Stage::batches`].
    pub fn event(
        &mut self,
        input: usize,
        frame: &[u8],
        received: Timestamp,
        mut on_detection: impl FnMut(RuleId, Timestamp),
    ) {
        self.stats.events += 1;
        if let Err(e) = self.parsers[input].parse(frame, received, &mut self.buf) {
            self.stats.parse_errors[e.kind.index()] += 1;
        }
        if self.engine.extractors.apply_in_zone(
            frame,
            &mut self.buf,
            self.parsers[input].zone_mut(),
        ) {
            self.stats.extracted += 1;
        }
        let ev = Event::new(frame, &self.buf);
        self.matched.clear();
        self.engine
            .rules
            .matches_into(&ev, &mut self.scratch, &mut self.matched);
        if self.matched.is_empty() {
            return;
        }
        self.stats.matches += self.matched.len() as u64;
        let received_ms = received.0 / 1_000_000;
        let t = match ev.time() {
            None => {
                self.stats.no_time += 1;
                ev.received()
            }
            Some(t) if t.0 / 1_000_000 > received_ms + self.max_future_ms => {
                self.stats.future += 1;
                ev.received()
            }
            Some(t) => t,
        };
        let corrs = &self.engine.correlations;
        // All the rules at once: an event matching two rules of one correlation is one
        // event of its group (see `Correlations::hits_into`).
        corrs.hits_into(
            &self.matched,
            &ev,
            t.0 / 1_000_000,
            received_ms,
            &mut self.batches,
            &mut self.hit_scratch,
            &mut self.stats.hits,
        );
        for &r in &self.matched {
            if corrs.rule_emits(r) {
                on_detection(r, t);
            }
        }
    }

    /// Hits queued in all batches.
    pub fn pending(&self) -> usize {
        self.batches.iter().map(|b| b.hits.len()).sum()
    }
}

/// A stage and one correlator shard on one thread.
pub struct Runner {
    pub stage: Stage,
    pub shard: Shard,
}

impl Runner {
    /// One input with parser config `pcfg`; `lateness_ms` the allowed lateness.
    pub fn new(
        engine: Arc<Engine>,
        pcfg: &ParserConfig,
        lateness_ms: i64,
        max_future_ms: i64,
    ) -> Runner {
        let shard = Shard::new(engine.correlations.clone(), lateness_ms);
        Runner {
            stage: Stage::new(engine, std::slice::from_ref(pcfg), 1, max_future_ms),
            shard,
        }
    }

    pub fn stats(&self) -> RunStats {
        self.stage.stats
    }

    /// Parses and matches one frame; see [`Stage::event`]. Hits wait for [`Runner::drain`].
    pub fn event(
        &mut self,
        frame: &[u8],
        received: Timestamp,
        on_detection: impl FnMut(RuleId, Timestamp),
    ) {
        self.stage.event(0, frame, received, on_detection);
    }

    /// Hits queued since the last drain.
    pub fn pending(&self) -> usize {
        self.stage.pending()
    }

    /// Applies queued hits to the correlator; alerts go to `out`.
    pub fn drain(&mut self, out: &mut Vec<CorrAlert>) {
        let b = &mut self.stage.batches[0];
        if !b.hits.is_empty() {
            self.shard.process(b, out);
            b.clear();
        }
    }

    /// End of input: queued hits applied, every pending window decided.
    pub fn finish(&mut self, out: &mut Vec<CorrAlert>) {
        self.drain(out);
        self.shard.flush(out);
    }
}
