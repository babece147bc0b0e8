//! VP8 picture numbering that stays continuous for a subscriber across simulcast switches.
//!
//! Each simulcast layer numbers its pictures on its own, from a random start: the picture ID
//! and TL0PICIDX of the VP8 payload descriptor (RFC 7741 section 4.2), and KEYIDX when used. A
//! receiver uses them to find which frames a frame depends on. When they jump at a layer switch,
//! Chrome may hold back or drop the new layer's frames for seconds, as if frames they depend on
//! were still missing, although every packet arrived. So each subscriber's forwarder renumbers
//! them as one sequence that continues across switches, like the RTP sequence numbers.
//!
//! Payloads come from the network: the parser checks every length and never panics.

// Descriptor bits (RFC 7741 section 4.2).
const X: u8 = 0x80; // extended control bits present
const I: u8 = 0x80; // picture ID present
const L: u8 = 0x40; // TL0PICIDX present
const T: u8 = 0x20; // TID present
const K: u8 = 0x10; // KEYIDX present
const M: u8 = 0x80; // the picture ID is 15 bits long
const KEY_IDX_MASK: u8 = 0x1f;

/// A picture ID as the packet carries it: 7 or 15 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PictureId {
    /// The picture ID without the length bit.
    pub value: u16,
    /// 15 bits (two bytes) rather than 7.
    pub long: bool,
}

impl PictureId {
    fn mask(self) -> u16 {
        if self.long { 0x7fff } else { 0x7f }
    }
}

/// The renumbered fields of one packet's VP8 payload descriptor (`None`: not present).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// Picture ID: running index of the frames.
    pub picture_id: Option<PictureId>,
    /// TL0PICIDX: running index of the temporal base layer frames.
    pub tl0_pic_idx: Option<u8>,
    /// KEYIDX: the 5-bit temporal key frame index.
    pub key_idx: Option<u8>,
}

/// Byte offsets of the fields in the payload, and of the VP8 payload header after them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Positions {
    picture_id: Option<usize>,
    tl0_pic_idx: Option<usize>,
    key_idx: Option<usize>,
    /// Where the descriptor ends (may equal the payload's length).
    pub header: usize,
}

/// Walks the descriptor (RFC 7741 section 4.2); `None` when the payload is too short for it.
pub(crate) fn locate(payload: &[u8]) -> Option<(Vp8Descriptor, Positions)> {
    let first = *payload.first()?;
    let mut descriptor = Vp8Descriptor::default();
    let mut at = Positions { header: 1, ..Positions::default() };
    if first & X == 0 {
        return Some((descriptor, at));
    }
    let extension = *payload.get(1)?;
    let mut offset = 2;
    if extension & I != 0 {
        let high = *payload.get(offset)?;
        let long = high & M != 0;
        let value = if long { u16::from_be_bytes([high & 0x7f, *payload.get(offset + 1)?]) } else { u16::from(high) };
        descriptor.picture_id = Some(PictureId { value, long });
        at.picture_id = Some(offset);
        offset += if long { 2 } else { 1 };
    }
    if extension & L != 0 {
        descriptor.tl0_pic_idx = Some(*payload.get(offset)?);
        at.tl0_pic_idx = Some(offset);
        offset += 1;
    }
    if extension & (T | K) != 0 {
        let byte = *payload.get(offset)?;
        if extension & K != 0 {
            descriptor.key_idx = Some(byte & KEY_IDX_MASK);
            at.key_idx = Some(offset);
        }
        offset += 1;
    }
    at.header = offset;
    Some((descriptor, at))
}

/// Reads the renumbered fields of a VP8 RTP payload's descriptor; `None` when the payload is too
/// short for the descriptor it announces.
pub fn parse_vp8_descriptor(payload: &[u8]) -> Option<Vp8Descriptor> {
    locate(payload).map(|(descriptor, _)| descriptor)
}

/// New values for a forwarded packet's descriptor fields (`None`: leave the field alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vp8Rewrite {
    /// New picture ID, cut to the 7 or 15 bits the packet carries.
    pub picture_id: Option<u16>,
    /// New TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// New KEYIDX, cut to 5 bits; the TID/Y bits of the byte are kept.
    pub key_idx: Option<u8>,
}

impl Vp8Rewrite {
    /// Writes the new values into `payload` (a VP8 payload, descriptor first). Fields the
    /// payload does not carry are left out; returns false when the descriptor is truncated.
    pub fn apply(&self, payload: &mut [u8]) -> bool {
        let Some((descriptor, at)) = locate(payload) else { return false };
        if let (Some(value), Some(old), Some(i)) = (self.picture_id, descriptor.picture_id, at.picture_id) {
            if old.long {
                let [high, low] = (value & 0x7fff).to_be_bytes();
                payload[i] = M | high;
                payload[i + 1] = low;
            } else {
                payload[i] = (value & 0x7f) as u8;
            }
        }
        if let (Some(value), Some(i)) = (self.tl0_pic_idx, at.tl0_pic_idx) {
            payload[i] = value;
        }
        if let (Some(value), Some(i)) = (self.key_idx, at.key_idx) {
            payload[i] = (payload[i] & !KEY_IDX_MASK) | (value & KEY_IDX_MASK);
        }
        true
    }
}

/// One subscriber's VP8 renumbering: the offsets of the input stream being forwarded, and the
/// newest values sent, where the next input stream continues.
#[derive(Clone, Debug, Default)]
pub struct Vp8Munger {
    picture_id_offset: u16,
    tl0_offset: u8,
    key_idx_offset: u8,
    last_picture_id: Option<u16>,
    last_tl0: Option<u8>,
    last_key_idx: Option<u8>,
}

impl Vp8Munger {
    /// A new input stream starts with this packet (a keyframe): its pictures follow the last
    /// one sent. The very first stream keeps its own numbers.
    pub fn switch_to(&mut self, first: &Vp8Descriptor) {
        if let (Some(last), Some(id)) = (self.last_picture_id, first.picture_id) {
            self.picture_id_offset = last.wrapping_add(1).wrapping_sub(id.value) & 0x7fff;
        }
        if let (Some(last), Some(tl0)) = (self.last_tl0, first.tl0_pic_idx) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(tl0);
        }
        if let (Some(last), Some(key)) = (self.last_key_idx, first.key_idx) {
            self.key_idx_offset = last.wrapping_add(1).wrapping_sub(key) & KEY_IDX_MASK;
        }
    }

    /// The output values for a forwarded packet of the current input stream.
    pub fn rewrite(&mut self, input: &Vp8Descriptor) -> Vp8Rewrite {
        let picture_id = input.picture_id.map(|id| {
            let out = id.value.wrapping_add(self.picture_id_offset) & id.mask();
            self.last_picture_id = Some(newest(self.last_picture_id, out, id.mask()));
            out
        });
        let tl0_pic_idx = input.tl0_pic_idx.map(|tl0| {
            let out = tl0.wrapping_add(self.tl0_offset);
            self.last_tl0 = Some(newest(self.last_tl0.map(u16::from), u16::from(out), 0xff) as u8);
            out
        });
        let key_idx = input.key_idx.map(|key| {
            let out = key.wrapping_add(self.key_idx_offset) & KEY_IDX_MASK;
            let mask = u16::from(KEY_IDX_MASK);
            self.last_key_idx = Some(newest(self.last_key_idx.map(u16::from), u16::from(out), mask) as u8);
            out
        });
        Vp8Rewrite { picture_id, tl0_pic_idx, key_idx }
    }
}

/// The newer of `last` and `value` in a counter that wraps at `mask + 1` (a late packet does not
/// move the numbering back).
fn newest(last: Option<u16>, value: u16, mask: u16) -> u16 {
    match last {
        Some(last) if value.wrapping_sub(last) & mask > mask / 2 => last,
        _ => value,
    }
}

#[cfg(test)]
mod tests;
