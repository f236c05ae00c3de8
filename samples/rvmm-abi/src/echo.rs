//! The request/response frames of the `virtio-echo` workload: rvmm's far
//! side sends requests into the tap, the guest sends each back as an
//! answer. Both are Ethernet frames whose first payload byte says which
//! they are and whose next four bytes number the request; the guest changes
//! nothing but that first byte, so the far side can tell its own requests
//! from answers and match each answer to its request.

/// Where the kind byte is: right after the Ethernet header.
pub const KIND_OFFSET: usize = 14;
/// The request's number (little-endian `u32`) follows the kind byte.
pub const SEQ_OFFSET: usize = KIND_OFFSET + 1;
/// The shortest frame that holds the kind and the number.
pub const MIN_FRAME: usize = SEQ_OFFSET + 4;
/// The kind byte of a request (the far side's).
pub const REQUEST: u8 = b'Q';
/// The kind byte of an answer (the guest's).
pub const ANSWER: u8 = b'A';

/// Why a frame could not be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotARequest {
    /// Shorter than [`MIN_FRAME`].
    TooShort,
    /// The kind byte is not [`REQUEST`].
    WrongKind,
}

/// Makes `frame` (its Ethernet header already written) request number `seq`.
///
/// # Panics
/// If `frame` is shorter than [`MIN_FRAME`].
pub fn make_request(frame: &mut [u8], seq: u32) {
    frame[KIND_OFFSET] = REQUEST;
    frame[SEQ_OFFSET..MIN_FRAME].copy_from_slice(&seq.to_le_bytes());
}

/// Turns the request in `frame` into its answer, in place; returns the
/// request's number.
pub fn answer(frame: &mut [u8]) -> Result<u32, NotARequest> {
    let seq = numbered(frame, REQUEST)?;
    frame[KIND_OFFSET] = ANSWER;
    Ok(seq)
}

/// The number of the request `frame` answers, if it is an answer.
pub fn answered(frame: &[u8]) -> Option<u32> {
    numbered(frame, ANSWER).ok()
}

/// The number `frame` carries, if its kind byte is `kind`.
fn numbered(frame: &[u8], kind: u8) -> Result<u32, NotARequest> {
    let Some(seq) = frame.get(SEQ_OFFSET..MIN_FRAME) else {
        return Err(NotARequest::TooShort);
    };
    if frame[KIND_OFFSET] != kind {
        return Err(NotARequest::WrongKind);
    }
    Ok(u32::from_le_bytes([seq[0], seq[1], seq[2], seq[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_differs_from_its_request_in_the_kind_byte_only() {
        let mut request = [0x5au8; 64];
        make_request(&mut request, 0x0102_0304);
        assert_eq!(answered(&request), None);
        let mut frame = request;
        assert_eq!(answer(&mut frame), Ok(0x0102_0304));
        assert_eq!(answered(&frame), Some(0x0102_0304));
        let changed = (0..frame.len()).filter(|&i| frame[i] != request[i]);
        assert!(changed.eq([KIND_OFFSET]));
    }

    #[test]
    fn only_requests_are_answered() {
        let mut frame = [0u8; MIN_FRAME];
        make_request(&mut frame, 7);
        answer(&mut frame).unwrap();
        // An answer is not answered again.
        assert_eq!(answer(&mut frame), Err(NotARequest::WrongKind));
        assert_eq!(answer(&mut [0u8; MIN_FRAME]), Err(NotARequest::WrongKind));
        let mut short = [REQUEST; MIN_FRAME - 1];
        assert_eq!(answer(&mut short), Err(NotARequest::TooShort));
        assert_eq!(answered(&[ANSWER; MIN_FRAME - 1]), None);
    }
}
