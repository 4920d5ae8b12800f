//! Reasoning apart from the answer: how a model marks the thinking it writes before answering,
//! and a splitter that sorts generated tokens into the two as they come, so that `hearth run`
//! and `chat` can show reasoning dimmed (or drop it), and the server can return it as
//! `reasoning_content`, never in `content`.

use crate::tokenizer::Tokenizer;
use std::borrow::Cow;

/// What the splitter writes before a harmony message addressed to a function (`to=functions.NAME`
/// in its header), followed by NAME and `<|message|>`: the tool-call scan's opening tag for
/// harmony (`serve/tool_calls.rs`). The message itself (the call's arguments) follows as answer
/// text.
pub const HARMONY_CALL: &str = "to=functions.";

/// How a model marks its reasoning, found from its family and vocabulary once at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasoningFormat {
    /// No reasoning markup: everything is answer.
    None,
    /// `<think>…</think>` (Qwen 3, DeepSeek R1 and its distillations, SmolLM 3), by the ids of
    /// those two tokens.
    Think { open: u32, close: u32 },
    /// OpenAI's harmony (gpt-oss): messages on channels, `<|channel|>NAME<|message|>TEXT<|end|>`,
    /// each after a `<|start|>ROLE` header; the `analysis` channel is reasoning.
    Harmony { start: u32, channel: u32, message: u32, end: u32 },
    /// Gemma 4's `<|channel>thought\n…<channel|>`: a channel opened by one token, named on its
    /// first line, closed by another.
    Channel { open: u32, close: u32 },
}

impl ReasoningFormat {
    /// Harmony where the family speaks it and the vocabulary has its tokens; else think tags
    /// where the vocabulary has both as single tokens.
    pub fn detect(tokenizer: &Tokenizer, harmony: bool) -> ReasoningFormat {
        let id = |text: &str| tokenizer.token_id(text);
        if let (true, Some(start), Some(channel), Some(message), Some(end)) =
            (harmony, id("<|start|>"), id("<|channel|>"), id("<|message|>"), id("<|end|>"))
        {
            return ReasoningFormat::Harmony { start, channel, message, end };
        }
        match (id("<think>"), id("</think>"), id("<|channel>"), id("<channel|>")) {
            (Some(open), Some(close), _, _) => ReasoningFormat::Think { open, close },
            (_, _, Some(open), Some(close)) => ReasoningFormat::Channel { open, close },
            _ => ReasoningFormat::None,
        }
    }
}

/// Which part of the output a piece of text belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Reasoning,
    Answer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    In(Channel),
    /// Harmony: between `<|end|>` or `<|start|>` and the next channel (the role and maybe a
    /// recipient, kept in `name` until the message starts).
    Header,
    /// Harmony: reading a channel's name up to `<|message|>`; Gemma 4: up to the end of the
    /// line.
    ChannelName,
}

/// Sorts one generation's tokens into reasoning and answer.
pub struct ReasoningSplit {
    format: ReasoningFormat,
    state: State,
    name: String,
    /// Leading whitespace after a switch is dropped (Qwen 3 writes "</think>\n\n").
    trim: bool,
}

impl ReasoningSplit {
    /// For a generation after `prompt`: inside reasoning where the prompt opened a think block
    /// it did not close (templates that start the model thinking), between harmony messages
    /// where the model is to write the next one.
    pub fn new(format: ReasoningFormat, prompt: &[u32]) -> ReasoningSplit {
        let state = match format {
            ReasoningFormat::None => State::In(Channel::Answer),
            ReasoningFormat::Think { open, close } => {
                let last = prompt.iter().rev().find(|&&t| t == open || t == close);
                State::In(if last == Some(&open) { Channel::Reasoning } else { Channel::Answer })
            }
            ReasoningFormat::Harmony { .. } => State::Header,
            ReasoningFormat::Channel { open, close } => match prompt.iter().rev().find(|&&t| t == open || t == close) {
                Some(&t) if t == open => State::ChannelName,
                _ => State::In(Channel::Answer),
            },
        };
        ReasoningSplit { format, state, name: String::new(), trim: true }
    }

    /// Where token `id`, whose text is `piece`, belongs: a channel and the text to show there,
    /// or None for markup. A harmony message to a function is answer text after the markup
    /// `to=functions.NAME<|message|>` ([`HARMONY_CALL`]), so a tool-call scan finds the call.
    pub fn classify<'a>(&mut self, id: u32, piece: &'a str) -> Option<(Channel, Cow<'a, str>)> {
        match self.format {
            ReasoningFormat::None => return Some((Channel::Answer, Cow::Borrowed(piece))),
            ReasoningFormat::Think { open, close } => {
                if id == open || id == close {
                    self.switch(State::In(if id == open { Channel::Reasoning } else { Channel::Answer }));
                    return None;
                }
            }
            ReasoningFormat::Channel { open, close } => {
                if id == open {
                    self.state = State::ChannelName;
                    return None;
                }
                if id == close {
                    self.switch(State::In(Channel::Answer));
                    return None;
                }
                if self.state == State::ChannelName {
                    // The channel's name ("thought") and its newline are markup.
                    let (_, after) = piece.split_once('\n')?;
                    self.switch(State::In(Channel::Reasoning));
                    return self.text(Channel::Reasoning, after);
                }
            }
            ReasoningFormat::Harmony { start, channel, message, end } => {
                if id == start || id == end {
                    self.name.clear();
                    self.switch(State::Header);
                    return None;
                }
                if id == channel {
                    // The header so far (a role, maybe `to=functions.NAME`) stays in `name`.
                    self.name.push(' ');
                    self.state = State::ChannelName;
                    return None;
                }
                if id == message {
                    // analysis is the reasoning; final and commentary (preambles, and calls of
                    // functions, named after `to=` in the header or beside the channel's
                    // name) are for the user.
                    let header = std::mem::take(&mut self.name);
                    let reasoning = header.split_whitespace().any(|word| word == "analysis");
                    self.switch(State::In(if reasoning { Channel::Reasoning } else { Channel::Answer }));
                    let function = header.split_once(HARMONY_CALL).map(|(_, rest)| {
                        rest.split(|c: char| c.is_whitespace() || c == '<').next().unwrap_or("").to_string()
                    });
                    return function
                        .map(|name| (Channel::Answer, Cow::Owned(format!("{HARMONY_CALL}{name}<|message|>"))));
                }
                match self.state {
                    State::ChannelName | State::Header => {
                        self.name.push_str(piece);
                        return None;
                    }
                    State::In(_) => {}
                }
            }
        }
        let State::In(channel) = self.state else { return None };
        self.text(channel, piece)
    }

    fn text<'a>(&mut self, channel: Channel, piece: &'a str) -> Option<(Channel, Cow<'a, str>)> {
        let text = if self.trim { piece.trim_start() } else { piece };
        if !text.is_empty() {
            self.trim = false;
        }
        Some((channel, Cow::Borrowed(text)))
    }

    fn switch(&mut self, state: State) {
        self.state = state;
        self.trim = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `tokens` (id, text) through a split, collecting each channel's text.
    fn split(format: ReasoningFormat, prompt: &[u32], tokens: &[(u32, &str)]) -> (String, String) {
        let mut s = ReasoningSplit::new(format, prompt);
        let (mut reasoning, mut answer) = (String::new(), String::new());
        for &(id, piece) in tokens {
            match s.classify(id, piece) {
                Some((Channel::Reasoning, t)) => reasoning.push_str(&t),
                Some((Channel::Answer, t)) => answer.push_str(&t),
                None => {}
            }
        }
        (reasoning, answer)
    }

    #[test]
    fn think_tags_split_reasoning_from_the_answer_and_templates_may_open_them() {
        let think = ReasoningFormat::Think { open: 1, close: 2 };
        let out = [(1, "<think>"), (5, "\nHmm"), (6, ", 2+2"), (2, "</think>"), (7, "\n\n"), (8, "4"), (9, ".")];
        assert_eq!(split(think, &[3, 4], &out), ("Hmm, 2+2".into(), "4.".into()));
        // A template that opens the block (Qwen 3.5): the output starts inside it.
        assert_eq!(split(think, &[3, 1, 5], &out[1..]), ("Hmm, 2+2".into(), "4.".into()));
        // One that closed it (thinking off): all answer.
        assert_eq!(split(think, &[1, 2], &out[5..]), (String::new(), "4.".into()));
        assert_eq!(split(ReasoningFormat::None, &[], &out[..3]), (String::new(), "<think>\nHmm, 2+2".into()));
    }

    #[test]
    fn gemma4_thought_channel_is_reasoning_without_its_name() {
        let gemma4 = ReasoningFormat::Channel { open: 1, close: 2 };
        let out =
            [(1, "<|channel>"), (5, "thought"), (6, "\n"), (7, "2+2"), (8, " is 4"), (2, "<channel|>"), (9, "4.")];
        assert_eq!(split(gemma4, &[3, 4], &out), ("2+2 is 4".into(), "4.".into()));
        // The name and the first words in one piece.
        let joined = [(1, "<|channel>"), (5, "thought\nHmm"), (8, ", 4"), (2, "<channel|>"), (9, "4.")];
        assert_eq!(split(gemma4, &[], &joined), ("Hmm, 4".into(), "4.".into()));
        // Thinking off: the template writes an empty channel, closed; the output is answer.
        assert_eq!(split(gemma4, &[1, 5, 6, 2], &out[6..]), (String::new(), "4.".into()));
        // A prompt that opened the channel: the output starts with its name.
        assert_eq!(split(gemma4, &[3, 1], &out[1..]), ("2+2 is 4".into(), "4.".into()));
    }

    #[test]
    fn harmony_analysis_is_reasoning_and_final_is_the_answer() {
        let harmony = ReasoningFormat::Harmony { start: 1, channel: 2, message: 3, end: 4 };
        let out = [
            (2, "<|channel|>"),
            (10, "analysis"),
            (3, "<|message|>"),
            (11, "User asks 2+2."),
            (4, "<|end|>"),
            (1, "<|start|>"),
            (12, "assistant"),
            (2, "<|channel|>"),
            (13, "final"),
            (3, "<|message|>"),
            (14, "4"),
        ];
        assert_eq!(split(harmony, &[1, 12], &out), ("User asks 2+2.".into(), "4".into()));
        // A call of a function, named beside the channel (as gpt-oss writes them) or in the
        // header (as its template does): the name as markup before the arguments.
        let beside = [
            (2, "<|channel|>"),
            (15, "commentary to=functions.get_weather "),
            (16, "<|constrain|>"),
            (17, "json"),
            (3, "<|message|>"),
            (18, "{\"city\": \"Paris\"}"),
        ];
        let call = "to=functions.get_weather<|message|>{\"city\": \"Paris\"}";
        assert_eq!(split(harmony, &[1, 12], &beside), (String::new(), call.into()));
        let header = [(1, "<|start|>"), (12, "assistant to=functions.get_weather"), (2, "<|channel|>")];
        let rest = [(19, "commentary json"), (3, "<|message|>"), (18, "{\"city\": \"Paris\"}")];
        assert_eq!(split(harmony, &[], &[&header[..], &rest[..]].concat()), (String::new(), call.into()));
    }
}
