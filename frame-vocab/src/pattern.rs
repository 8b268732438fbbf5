//! The test patterns a producer can be asked to show (carried by `SetPattern`).

use std::fmt;
use std::str::FromStr;

/// Which test image the pattern source draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PatternKind {
    /// Colour bars, a moving box and the frame number; encodes its seq so any reader can
    /// verify a frame's integrity.
    #[default]
    Moving,
    /// Static colour bars, for pixel checks.
    Bars,
}

impl PatternKind {
    /// Every pattern, in wire-code order.
    pub const ALL: [PatternKind; 2] = [PatternKind::Moving, PatternKind::Bars];

    /// The stable wire code (never 0).
    pub const fn code(self) -> u8 {
        match self {
            PatternKind::Moving => 1,
            PatternKind::Bars => 2,
        }
    }

    /// Decodes a wire code; `None` for anything unknown.
    pub const fn from_code(code: u8) -> Option<PatternKind> {
        match code {
            1 => Some(PatternKind::Moving),
            2 => Some(PatternKind::Bars),
            _ => None,
        }
    }

    /// The command-line name.
    pub const fn name(self) -> &'static str {
        match self {
            PatternKind::Moving => "moving",
            PatternKind::Bars => "bars",
        }
    }
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pattern name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pattern {0:?} (expected moving or bars)")]
pub struct UnknownPattern(pub String);

impl FromStr for PatternKind {
    type Err = UnknownPattern;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PatternKind::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPattern(s.to_owned()))
    }
}
