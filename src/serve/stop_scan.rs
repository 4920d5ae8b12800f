//! Stop strings over streamed text: text is released as it is generated, except what could
//! still become a stop string; at one, the text before it is the answer's end. Tokens' log-
//! probabilities travel with the text their tokens begin.

use super::api::Logprob;

pub struct StopScan {
    stops: Vec<String>,
    text: String,
    sent: usize,
    /// Log-probabilities not yet released, each with the offset in `text` where its token's
    /// text begins.
    pending: Vec<(usize, Logprob)>,
}

/// Text safe to send, and the log-probabilities of the tokens that begin in it.
#[derive(Default)]
pub struct Released {
    pub text: String,
    pub logprobs: Vec<Logprob>,
}

impl StopScan {
    pub fn new(stops: Vec<String>) -> StopScan {
        StopScan { stops, text: String::new(), sent: 0, pending: Vec::new() }
    }

    /// Adds a token's `piece`; returns what may be sent and whether a stop string was reached
    /// (then nothing after it is released, ever).
    pub fn push(&mut self, piece: &str, logprob: Option<Logprob>) -> (Released, bool) {
        if let Some(logprob) = logprob {
            self.pending.push((self.text.len(), logprob));
        }
        self.text.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            let released = self.release(self.sent.min(at), at);
            self.pending.clear();
            return (released, true);
        }
        let hold = self.stops.iter().map(|s| s.len().saturating_sub(1)).max().unwrap_or(0);
        let mut until = self.text.len().saturating_sub(hold).max(self.sent);
        while !self.text.is_char_boundary(until) {
            until -= 1;
        }
        (self.release(self.sent, until), false)
    }

    /// Everything still held back, at the end of generation.
    pub fn rest(&mut self) -> Released {
        let released = self.release(self.sent, self.text.len());
        let late = self.pending.drain(..).map(|(_, logprob)| logprob);
        Released { logprobs: released.logprobs.into_iter().chain(late).collect(), ..released }
    }

    fn release(&mut self, from: usize, until: usize) -> Released {
        self.sent = until;
        let begun = self.pending.iter().take_while(|(start, _)| *start < until).count();
        Released {
            text: self.text[from..until].to_string(),
            logprobs: self.pending.drain(..begun).map(|(_, logprob)| logprob).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::TokenText;

    fn token(text: &str) -> Option<Logprob> {
        let token = TokenText { text: text.into(), bytes: text.as_bytes().to_vec(), logprob: -1.0 };
        Some(Logprob { token, top: Vec::new() })
    }

    #[test]
    fn stop_strings_end_the_text_before_them_even_across_pieces() {
        let mut scan = StopScan::new(vec!["\nUser:".into()]);
        let (mut out, mut tokens) = (String::new(), Vec::new());
        for piece in ["Hello", " there", "\nUs", "er: more"] {
            let (released, hit) = scan.push(piece, token(piece));
            out.push_str(&released.text);
            tokens.extend(released.logprobs.into_iter().map(|l| l.token.text));
            if hit {
                break;
            }
        }
        assert_eq!(out, "Hello there");
        assert_eq!(tokens, ["Hello", " there"], "the stop string's tokens are not reported");
        let mut plain = StopScan::new(vec![]);
        assert_eq!(plain.push("é and more", None).0.text, "é and more");
    }

    #[test]
    fn log_probabilities_wait_for_their_text() {
        let mut scan = StopScan::new(vec!["STOP".into()]);
        let (first, _) = scan.push("ab", token("ab"));
        // Held back: the last 3 bytes could begin "STOP".
        assert_eq!((first.text.as_str(), first.logprobs.len()), ("", 0));
        let (second, _) = scan.push("cdef", token("cdef"));
        assert_eq!(second.text, "abc");
        assert_eq!(second.logprobs.iter().map(|l| l.token.text.as_str()).collect::<Vec<_>>(), ["ab", "cdef"]);
        let rest = scan.rest();
        assert_eq!((rest.text.as_str(), rest.logprobs.len()), ("def", 0));
    }
}
