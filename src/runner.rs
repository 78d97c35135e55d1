//! The whole detection path on one thread: parse → extract → match → correlate. Used where
//! order and determinism matter more than parallelism: `kuzet replay` (event time, file
//! order), `kuzet test` (rule behaviour tests), and tests of the library. The daemon runs the
//! same stages on worker and shard threads (`pipeline/`).

use std::sync::Arc;

use crate::correlator::shard::{CorrAlert, Shard};
use crate::correlator::{Correlations, HitBatch, HitStats};
use crate::engine::Engine;
use crate::event::{Event, EventBuf, FieldMode, Timestamp};
use crate::matcher::{RuleId, Scratch};
use crate::parser::{ParseErrorKind, Parser, ParserConfig};

/// Counters of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    pub events: u64,
    pub parse_errors: [u64; ParseErrorKind::ALL.len()],
    /// Events with no time of their own (receive time used).
    pub no_time: u64,
    /// Events dated too far after their receive time (receive time used).
    pub future: u64,
    /// Events some extractor gave fields to.
    pub extracted: u64,
    pub hits: HitStats,
}

/// Runs events through an engine.
pub struct Runner {
    pub engine: Arc<Engine>,
    parser: Parser,
    buf: EventBuf,
    scratch: Scratch,
    matched: Vec<RuleId>,
    batch: [HitBatch; 1],
    pub shard: Shard,
    key_buf: Vec<u8>,
    tmp: Vec<u8>,
    max_future_ms: i64,
    pub stats: RunStats,
}

impl Runner {
    /// `pcfg` should be the parser config the engine was built for (its mode is forced to
    /// `Known`); `lateness_ms` the allowed lateness; `max_future_ms` how far after its receive
    /// time an event may be dated before the receive time is used instead.
    pub fn new(
        engine: Arc<Engine>,
        pcfg: &ParserConfig,
        lateness_ms: i64,
        max_future_ms: i64,
    ) -> Runner {
        let parser = Parser::new(
            engine.table.clone(),
            ParserConfig {
                mode: FieldMode::Known,
                ..pcfg.clone()
            },
        );
        let shard = Shard::new(engine.correlations.clone(), lateness_ms);
        Runner {
            engine,
            parser,
            buf: EventBuf::new(),
            scratch: Scratch::new(),
            matched: Vec::new(),
            batch: [HitBatch::default()],
            shard,
            key_buf: Vec::new(),
            tmp: Vec::new(),
            max_future_ms,
            stats: RunStats::default(),
        }
    }

    pub fn correlations(&self) -> &Arc<Correlations> {
        &self.engine.correlations
    }

    /// Parses and matches one frame. Detection alerts (rules whose own matches are alerts)
    /// are reported through `on_detection(rule, event time)`; correlation hits are queued
    /// for [`Runner::drain`].
    pub fn event(
        &mut self,
        frame: &[u8],
        received: Timestamp,
        mut on_detection: impl FnMut(RuleId, Timestamp),
    ) {
        self.stats.events += 1;
        if let Err(e) = self.parser.parse(frame, received, &mut self.buf) {
            self.stats.parse_errors[e.kind.index()] += 1;
        }
        if self
            .engine
            .extractors
            .apply_in_zone(frame, &mut self.buf, self.parser.zone_mut())
        {
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
        for &r in &self.matched {
            if corrs.feeds(r) {
                corrs.hits_into(
                    r,
                    &ev,
                    t.0 / 1_000_000,
                    received_ms,
                    &mut self.batch,
                    &mut self.key_buf,
                    &mut self.tmp,
                    &mut self.stats.hits,
                );
            }
            if corrs.rule_emits(r) {
                on_detection(r, t);
            }
        }
    }

    /// Hits queued since the last drain.
    pub fn pending(&self) -> usize {
        self.batch[0].hits.len()
    }

    /// Applies queued hits to the correlator; alerts go to `out`.
    pub fn drain(&mut self, out: &mut Vec<CorrAlert>) {
        if !self.batch[0].hits.is_empty() {
            self.shard.process(&self.batch[0], out);
            self.batch[0].clear();
        }
    }

    /// End of input: queued hits applied, every pending window decided.
    pub fn finish(&mut self, out: &mut Vec<CorrAlert>) {
        self.drain(out);
        self.shard.flush(out);
    }
}
