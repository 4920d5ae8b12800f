// Which prompt tokens attention_flash.wgsl takes and which attention.wgsl keeps. A step of
// more than one token is cut into tiles of BR consecutive rows; the flash kernel takes a tile
// whose rows all belong to one sequence (a prompt, the usual case), since its workgroup reads
// one sequence's keys for all of them; a tile mixing sequences (a server step where requests
// decode beside a prompt) stays with attention.wgsl, one workgroup per token. A lone token
// (decoding) always stays with attention.wgsl, which splits its keys. Constants: BR;
// FLASH (off: the flash kernel takes nothing).

fn flash_takes(tile: u32) -> bool {
#if !FLASH
    return false;
#else
    if step.n_tokens < 2u {
        return false;
    }
    let first = tile * BR;
    let last = min(step.n_tokens, first + BR);
    let seq = row_seq(first);
    for (var t = first + 1u; t < last; t++) {
        if row_seq(t) != seq {
            return false;
        }
    }
    return true;
#endif
}
