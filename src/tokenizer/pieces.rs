//! The text of single tokens: byte-level and SentencePiece decoding, byte tokens, and
//! llama.cpp's clean-up of spaces before punctuation.

use super::Kind;
use super::special::Attr;

pub(super) fn render_piece(kind: Kind, text: &str, attr: Attr) -> Box<[u8]> {
    match attr {
        Attr::Control | Attr::Unknown | Attr::UserDefined => text.as_bytes().into(),
        Attr::Normal => match kind {
            Kind::Spm | Kind::Gemma4 => text.replace('▁', " ").into_bytes().into(),
            Kind::Bpe => byte_level_decode(text),
            Kind::Placeholder => text.as_bytes().into(),
        },
        Attr::Byte => parse_byte_token(text).map_or_else(|| Box::from([]), |b| Box::from([b])),
        Attr::Unused | Attr::Undefined => Box::from([]),
    }
}

/// `<0xAB>` -> 0xAB
pub(super) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Maps a byte-level BPE character back to its byte (inverse of GPT-2's bytes_to_unicode):
/// printable Latin-1 bytes stand for themselves, the other 68 bytes were shifted, in order, to U+0100..U+0143.
pub(super) fn byte_level_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    let byte = match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => cp,
        0x100..=0x120 => cp - 0x100,
        0x121..=0x142 => cp - 0x121 + 0x7F,
        0x143 => 0xAD,
        _ => return None,
    };
    u8::try_from(byte).ok()
}

pub(super) fn byte_level_decode(text: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match byte_level_byte(c) {
            Some(b) => out.push(b),
            // Not a byte-level character (llama.cpp prints a marker); keep its UTF-8 instead.
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.into()
}

/// llama.cpp's clean_up_tokenization_spaces: " ?" " !" " ." " ," lose the space, a lone
/// apostrophe between spaces loses both, and " 's" " 'm" " 're" " 've" lose the space.
pub(super) fn clean_up_spaces(text: &[u8]) -> Vec<u8> {
    let mut pass1 = Vec::with_capacity(text.len());
    let mut prev = None;
    for &c in text {
        if prev == Some(b' ') && matches!(c, b'?' | b'!' | b'.' | b',') {
            pass1.pop();
        }
        pass1.push(c);
        prev = Some(c);
    }

    let mut pass2 = Vec::with_capacity(pass1.len());
    let mut prev_space = false;
    let mut i = 0;
    while let Some(&c) = pass1.get(i) {
        if c == b'\'' && prev_space && pass1.get(i + 1) == Some(&b' ') {
            pass2.pop();
            pass2.push(c);
            // The space after it is dropped and does not count as a preceding space.
            prev_space = false;
            i += 2;
            continue;
        }
        pass2.push(c);
        prev_space = c == b' ';
        i += 1;
    }

    let mut pass3 = Vec::with_capacity(pass2.len());
    for (i, &c) in pass2.iter().enumerate() {
        let after_space = i > 0 && pass2.get(i - 1) == Some(&b' ');
        if c == b'\'' && after_space {
            let next = pass2.get(i + 1..).unwrap_or(&[]);
            if matches!(next, [b's' | b'm', ..] | [b'r' | b'v', b'e', ..]) {
                pass3.pop();
            }
        }
        pass3.push(c);
    }
    pass3
}
