//! Reading a `.nqz` file (layout in `FORMAT.md`), defensively: every count
//! is checked against the bytes left before anything is reserved, and every
//! error says what was wrong and where.

use std::collections::HashSet;

use super::reader::{corrupt, Reader};
use super::{
    coding_from_code, field_bits, EntryKind, Metadata, StreamBits, DITHERED, MAGIC, MAX_DIMS,
    POSITION_KINDS, PREAMBLE_BYTES, STORED_PRUNED, STORED_PRUNED_RAW, STORED_QUANTIZED, STORED_RAW,
    VERSION, VERSION_WITHOUT_DITHER, VERSION_WITHOUT_METADATA,
};
use crate::context::{rows_of, ContextDecoder};
use crate::dither::{dequantize, Dither};
use crate::error::Result;
use crate::huffman::{BitReader, Code, Coding, FixedCode, HuffmanCode};
use crate::size::positions_from_fields;

/// Caps on what a file may make the decoder allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tensor elements in all, summed over tensors (default 2^32,
    /// 16 GiB of float32). Raw and coded data are bounded by the file
    /// size anyway; this bounds the weights a one-cluster codebook codes in
    /// zero bits.
    pub max_elements: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_elements: 1 << 32,
        }
    }
}

/// How a decoded tensor was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredAs {
    /// Raw float32.
    Raw,
    /// Cluster indices, one per element.
    Quantized {
        /// Codebook index in the file.
        codebook: usize,
        /// One cluster index per element.
        assignment: Vec<u32>,
    },
    /// Float32 values of the survivors only.
    PrunedRaw {
        /// Flattened survivor positions.
        survivors: Vec<u64>,
    },
    /// Cluster indices of the survivors only.
    Pruned {
        /// Codebook index in the file.
        codebook: usize,
        /// One cluster index per survivor.
        assignment: Vec<u32>,
        /// Flattened survivor positions.
        survivors: Vec<u64>,
    },
}

/// A tensor read back.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTensor {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Conv, linear or other.
    pub kind: EntryKind,
    /// Its values, row-major: raw floats, or the centres of its clusters
    /// (less the dither's offsets for a dithered codebook)
    /// (0 at pruned positions).
    pub values: Vec<f32>,
    /// How it was stored.
    pub stored: StoredAs,
}

/// A whole file read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The tensors, in file order.
    pub tensors: Vec<DecodedTensor>,
    /// Per codebook: its centres and its coding.
    pub codebooks: Vec<(Vec<f32>, Coding)>,
    /// Per codebook: its dither (universal quantization), if any.
    pub dithers: Vec<Option<Dither>>,
    /// Bits per payload stream, payload and header bytes, as the encoder
    /// reported them.
    pub streams: StreamBits,
    /// The metadata section (empty for a version 1 file).
    pub metadata: Metadata,
}

/// Table-of-contents entry before the streams are read.
struct Entry {
    name: String,
    shape: Vec<u64>,
    kind: EntryKind,
    storage: u8,
    numel: u64,
    codebook: usize,
    survivors: u64,
    fields: u64,
}

impl Entry {
    /// Whether the tensor is pruned.
    fn is_pruned(&self) -> bool {
        self.storage == STORED_PRUNED || self.storage == STORED_PRUNED_RAW
    }

    /// Whether its indices (and survivor flags, if pruned) are context
    /// coded, in its codebook's streams.
    fn context_coded(&self, codebooks: &[CodebookRead]) -> bool {
        (self.storage == STORED_QUANTIZED || self.storage == STORED_PRUNED)
            && codebooks
                .get(self.codebook)
                .is_some_and(|c| c.1 == Coding::Context)
    }

    /// Whether its survivors' gap fields are in the stream of its kind.
    fn has_gap_fields(&self, codebooks: &[CodebookRead]) -> bool {
        self.is_pruned() && !self.context_coded(codebooks)
    }
}

/// The survivors of a pruned entry, read from the gap fields of its kind
/// (`fields`: per kind, the decoded fields and how many are used).
fn survivors_of(e: &Entry, fields: &mut [(EntryKind, Vec<u32>, usize)]) -> Result<Vec<u64>> {
    let at = |what: String| corrupt(format!("tensor `{}`: {what}", e.name));
    let (_, symbols, used) = fields
        .iter_mut()
        .find(|(kind, _, _)| *kind == e.kind)
        .ok_or_else(|| at("no gap-field stream".into()))?;
    let mine = &symbols[*used..*used + e.fields as usize];
    *used += e.fields as usize;
    let survivors = positions_from_fields(mine, field_bits(e.kind), e.numel)
        .map_err(|err| at(err.to_string()))?;
    if survivors.len() as u64 != e.survivors {
        return Err(at(format!(
            "{} survivors in its gap fields, {} in its header",
            survivors.len(),
            e.survivors
        )));
    }
    Ok(survivors)
}

/// Reads a `.nqz` file with the default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    decode_with_limits(bytes, Limits::default())
}

/// Checks magic, version, length and checksum; returns the version and the
/// body.
fn body_of(bytes: &[u8]) -> Result<(u16, &[u8])> {
    let mut r = Reader::new(bytes, 0);
    let magic = r
        .take(MAGIC.len() as u64, "the magic number")
        .map_err(|_| corrupt("bad magic: too short to be an .nqz file"))?;
    if magic != MAGIC {
        return Err(corrupt("bad magic: not an .nqz file"));
    }
    let version = r.u16("the version")?;
    if !(VERSION_WITHOUT_METADATA..=VERSION).contains(&version) {
        return Err(corrupt(format!(
            "unsupported version {version} (this reader reads versions \
             {VERSION_WITHOUT_METADATA} to {VERSION})"
        )));
    }
    let flags = r.u16("the flags")?;
    if flags != 0 {
        return Err(corrupt(format!("unsupported flags {flags:#06x}")));
    }
    let body_len = r.u64("the body length")?;
    let stored_crc = r.u32("the checksum")?;
    let left = r.remaining() as u64;
    if body_len > left {
        return Err(corrupt(format!(
            "truncated: the body should have {body_len} bytes, the file has {left} after the \
             preamble"
        )));
    }
    if body_len < left {
        return Err(corrupt(format!(
            "{} bytes after the end of the body",
            left - body_len
        )));
    }
    let body = r.take(body_len, "the body")?;
    let crc = crc32c::crc32c(body);
    if crc != stored_crc {
        return Err(corrupt(format!(
            "checksum mismatch: stored {stored_crc:08x}, computed {crc:08x}"
        )));
    }
    Ok((version, body))
}

/// Section 7 (version 2): key and value pairs, keys unique and in order.
fn read_metadata(r: &mut Reader<'_>) -> Result<Metadata> {
    let n = r.u32("the metadata count")?;
    // key length and value length
    r.check_count(u64::from(n), 6, "metadata")?;
    let mut metadata = Metadata::new();
    for i in 0..n {
        let key_len = r.u16("a metadata key length")?;
        let key = std::str::from_utf8(r.take(u64::from(key_len), "a metadata key")?)
            .map_err(|_| corrupt(format!("metadata entry {i}: key is not UTF-8")))?
            .to_owned();
        let value_len = r.u32("a metadata value length")?;
        let value = std::str::from_utf8(r.take(u64::from(value_len), "a metadata value")?)
            .map_err(|_| corrupt(format!("metadata `{key}`: value is not UTF-8")))?
            .to_owned();
        if metadata
            .last_key_value()
            .is_some_and(|(last, _)| *last >= key)
        {
            return Err(corrupt(format!(
                "metadata `{key}`: keys must be unique and in order"
            )));
        }
        metadata.insert(key, value);
    }
    Ok(metadata)
}

fn read_entries(r: &mut Reader<'_>, limits: Limits, version: u16) -> Result<Vec<Entry>> {
    let last_storage = if version == VERSION_WITHOUT_METADATA {
        STORED_PRUNED
    } else {
        STORED_PRUNED_RAW
    };
    let n = r.u32("the tensor count")?;
    // name length, kind, storage, dimension count
    r.check_count(u64::from(n), 5, "tensor table")?;
    let mut entries = Vec::with_capacity(n as usize);
    let mut names = HashSet::new();
    let mut elements = 0u64;
    for t in 0..n {
        let name_len = r.u16("a tensor name length")?;
        let name = std::str::from_utf8(r.take(u64::from(name_len), "a tensor name")?)
            .map_err(|_| corrupt(format!("tensor {t}: name is not UTF-8")))?
            .to_owned();
        let at = |what: String| corrupt(format!("tensor {t} `{name}`: {what}"));
        let kind_code = r.u8("a tensor kind")?;
        let kind =
            EntryKind::from_code(kind_code).ok_or_else(|| at(format!("kind {kind_code}")))?;
        let storage = r.u8("a storage code")?;
        if storage > last_storage {
            return Err(at(format!(
                "storage code {storage} in a version {version} file"
            )));
        }
        let pruned = storage == STORED_PRUNED || storage == STORED_PRUNED_RAW;
        let ndim = r.u8("a dimension count")? as usize;
        if ndim > MAX_DIMS {
            return Err(at(format!("{ndim} dimensions, at most {MAX_DIMS}")));
        }
        let mut shape = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            shape.push(r.u64("a dimension")?);
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| at(format!("shape {shape:?} overflows")))?;
        elements = elements.saturating_add(numel);
        if elements > limits.max_elements {
            return Err(at(format!(
                "the tensors so far have {elements} elements, above the limit of {}",
                limits.max_elements
            )));
        }
        let codebook = if storage == STORED_RAW || storage == STORED_PRUNED_RAW {
            usize::MAX
        } else {
            r.u32("a codebook index")? as usize
        };
        let (survivors, fields) = if pruned {
            if kind == EntryKind::Other {
                return Err(at("pruned but neither conv nor linear".into()));
            }
            let survivors = r.u64("a survivor count")?;
            let fields = r.u64("a gap-field count")?;
            // every gap field advances at least one position (context-coded
            // tensors have none, checked once the codings are known)
            if survivors > numel || fields > numel {
                return Err(at(format!(
                    "{survivors} survivors in {fields} gap fields for {numel} elements"
                )));
            }
            (survivors, fields)
        } else {
            (0, 0)
        };
        if !names.insert(name.clone()) {
            return Err(at("name used twice".into()));
        }
        entries.push(Entry {
            name,
            shape,
            kind,
            storage,
            numel,
            codebook,
            survivors,
            fields,
        });
    }
    Ok(entries)
}

/// A codebook read back: centres, coding, its code (`None` when empty) and
/// its dither.
type CodebookRead = (Vec<f32>, Coding, Option<Code>, Option<Dither>);

fn read_codebooks(r: &mut Reader<'_>, version: u16) -> Result<Vec<CodebookRead>> {
    let n = r.u32("the codebook count")?;
    r.check_count(u64::from(n), 5, "codebook table")?;
    let mut codebooks = Vec::with_capacity(n as usize);
    for b in 0..n {
        let coding_byte = r.u8("a coding")?;
        let dithered = coding_byte & DITHERED != 0;
        let coding = coding_from_code(coding_byte & !DITHERED)
            .filter(|&c| c != Coding::Context || version >= VERSION_WITHOUT_DITHER)
            .filter(|_| !dithered || version >= VERSION)
            .ok_or_else(|| {
                corrupt(format!(
                    "codebook {b}: coding {coding_byte} in a version {version} file"
                ))
            })?;
        let k = r.u32("a cluster count")?;
        let centres = r.f32s(u64::from(k), "centres")?;
        let dither = if dithered {
            let seed = r.u64("a dither seed")?;
            let step = r.f32s(1, "a dither step")?[0];
            if !(step.is_finite() && step > 0.0) {
                return Err(corrupt(format!("codebook {b}: dither step {step}")));
            }
            Some(Dither { seed, step })
        } else {
            None
        };
        let code = match coding {
            _ if k == 0 => None,
            Coding::Context => None,
            Coding::Fixed => Some(Code::Fixed(FixedCode::new(k as usize)?)),
            Coding::Huffman => {
                let table = r.take(u64::from(k), "a code table")?;
                Some(Code::Huffman(
                    HuffmanCode::from_length_table(table)
                        .map_err(|e| corrupt(format!("codebook {b}: bad code table: {e}")))?,
                ))
            }
        };
        codebooks.push((centres, coding, code, dither));
    }
    Ok(codebooks)
}

/// A context-coded stream: its length in bits, a multiple of 32, then its
/// 32-bit words.
fn read_words(r: &mut Reader<'_>, what: &str) -> Result<(Vec<u32>, u64)> {
    let bits = r.u64("a stream length")?;
    if bits % 32 != 0 {
        return Err(corrupt(format!(
            "{what}: {bits} bits, not whole 32-bit words"
        )));
    }
    let bytes = r.take(bits / 8, what)?;
    let words = bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    Ok((words, bits))
}

/// The indices of the tensors of context-coded codebook `b` of `k`
/// clusters, in table order (one sequence, as a prefix-coded stream gives
/// them), after setting `survivors[entry]` for each of its pruned tensors.
fn read_context_codebook(
    r: &mut Reader<'_>,
    b: usize,
    k: usize,
    entries: &[Entry],
    survivors: &mut [Option<Vec<u64>>],
    streams: &mut StreamBits,
) -> Result<Vec<u32>> {
    let (index_words, index_bits) = read_words(r, &format!("index stream of codebook {b}"))?;
    let (flag_words, flag_bits) = read_words(r, &format!("flag stream of codebook {b}"))?;
    streams.index_bits += index_bits;
    streams.position_bits += flag_bits;
    let at = |e: &Entry, what: String| corrupt(format!("tensor `{}`: {what}", e.name));
    let mine: Vec<(usize, &Entry)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            (e.storage == STORED_QUANTIZED || e.storage == STORED_PRUNED) && e.codebook == b
        })
        .collect();
    let mut flags = ContextDecoder::new(flag_words).map_err(|err| corrupt(err.to_string()))?;
    for &(i, e) in mine.iter().filter(|(_, e)| e.storage == STORED_PRUNED) {
        survivors[i] = Some(
            flags
                .survivors(rows_of(&e.shape), e.numel, e.survivors)
                .map_err(|err| at(e, err.to_string()))?,
        );
    }
    let end = |err: crate::QuantError| corrupt(format!("codebook {b}: {err}"));
    flags.finish().map_err(end)?;
    let mut decoder = ContextDecoder::new(index_words).map_err(end)?;
    let k = u32::try_from(k).map_err(|_| corrupt(format!("codebook {b}: {k} clusters")))?;
    let mut indices = Vec::new();
    for &(_, e) in &mine {
        let n = if e.storage == STORED_PRUNED {
            e.survivors
        } else {
            e.numel
        };
        if n > 0 && k == 0 {
            return Err(at(e, format!("{n} indices into an empty codebook")));
        }
        indices.extend(
            decoder
                .indices(k, n)
                .map_err(|err| at(e, err.to_string()))?,
        );
    }
    decoder.finish().map_err(end)?;
    Ok(indices)
}

/// Decodes `n` symbols from a stream that must hold exactly its stated bits.
fn read_stream(
    r: &mut Reader<'_>,
    code: Option<&Code>,
    n: u64,
    what: &str,
) -> Result<(Vec<u32>, u64)> {
    let bits = r.u64("a stream length")?;
    let bytes = r.take(bits.div_ceil(8), what)?;
    let Some(code) = code else {
        if n > 0 || bits > 0 {
            return Err(corrupt(format!("{what}: {n} symbols with no code")));
        }
        return Ok((Vec::new(), 0));
    };
    let n = usize::try_from(n).map_err(|_| corrupt(format!("{what}: {n} symbols")))?;
    let mut br = BitReader::new(bytes);
    let symbols = code
        .decode_from(&mut br, n)
        .map_err(|e| corrupt(format!("{what}: {e}")))?;
    if br.position() != bits {
        return Err(corrupt(format!(
            "{what}: {n} symbols take {} bits, the stream says {bits}",
            br.position()
        )));
    }
    Ok((symbols, bits))
}

/// Reads a `.nqz` file: every tensor with its values and how it was stored.
///
/// Fails with [`QuantError::Corrupt`](crate::QuantError::Corrupt) on a bad
/// magic number, an unsupported version, a length or checksum mismatch, a
/// truncated or inconsistent table or stream, or a file that would decode
/// to more than `limits.max_elements` elements.
pub fn decode_with_limits(bytes: &[u8], limits: Limits) -> Result<Decoded> {
    let (version, body) = body_of(bytes)?;
    let mut r = Reader::new(body, PREAMBLE_BYTES);
    let entries = read_entries(&mut r, limits, version)?;
    let codebooks = read_codebooks(&mut r, version)?;
    for e in entries.iter().filter(|e| e.is_pruned()) {
        let fields_ok = if e.context_coded(&codebooks) {
            e.fields == 0
        } else {
            e.survivors <= e.fields
        };
        if !fields_ok {
            return Err(corrupt(format!(
                "tensor `{}`: {} survivors in {} gap fields",
                e.name, e.survivors, e.fields
            )));
        }
    }
    let mut per_codebook = vec![0u64; codebooks.len()];
    for e in entries
        .iter()
        .filter(|e| e.storage == STORED_QUANTIZED || e.storage == STORED_PRUNED)
    {
        let Some(count) = per_codebook.get_mut(e.codebook) else {
            return Err(corrupt(format!(
                "tensor `{}`: codebook {} of {}",
                e.name,
                e.codebook,
                codebooks.len()
            )));
        };
        *count += if e.storage == STORED_PRUNED {
            e.survivors
        } else {
            e.numel
        };
    }

    let mask = r.u8("the position-kind mask")?;
    let mut position_codes = Vec::new();
    for kind in POSITION_KINDS {
        let present = mask & (1 << kind.code()) != 0;
        let pruned = entries
            .iter()
            .any(|e| e.has_gap_fields(&codebooks) && e.kind == kind);
        if present != pruned {
            return Err(corrupt(format!(
                "position mask {mask:#04x} disagrees with the pruned tensors"
            )));
        }
        if present {
            let table = r.take(1 << field_bits(kind), "a gap-field code table")?;
            let code = HuffmanCode::from_length_table(table)
                .map_err(|e| corrupt(format!("bad gap-field code table: {e}")))?;
            position_codes.push((kind, Code::Huffman(code)));
        }
    }
    if mask >> POSITION_KINDS.len() != 0 {
        return Err(corrupt(format!("position mask {mask:#04x}")));
    }

    let mut streams = StreamBits::default();
    // each coded stream is padded to whole bytes on its own
    let mut coded_stream_bytes = 0u64;
    let mut indices = Vec::with_capacity(codebooks.len());
    let mut context_survivors = vec![None; entries.len()];
    for (b, (centres, coding, code, _)) in codebooks.iter().enumerate() {
        streams.codebook_bits += 32 * centres.len() as u64;
        if *coding == Coding::Context {
            let before = streams.index_bits + streams.position_bits;
            let symbols = read_context_codebook(
                &mut r,
                b,
                centres.len(),
                &entries,
                &mut context_survivors,
                &mut streams,
            )?;
            coded_stream_bytes += (streams.index_bits + streams.position_bits - before) / 8;
            indices.push(symbols.into_iter());
            continue;
        }
        let what = format!("index stream of codebook {b}");
        let (symbols, bits) = read_stream(&mut r, code.as_ref(), per_codebook[b], &what)?;
        streams.index_bits += bits;
        coded_stream_bytes += bits.div_ceil(8);
        if matches!(code, Some(Code::Huffman(_))) {
            streams.code_table_bits += 8 * centres.len() as u64;
        }
        indices.push(symbols.into_iter());
    }
    let mut fields = Vec::new();
    for (kind, code) in &position_codes {
        let n: u64 = entries
            .iter()
            .filter(|e| e.has_gap_fields(&codebooks) && e.kind == *kind)
            .map(|e| e.fields)
            .sum();
        let (symbols, bits) = read_stream(&mut r, Some(code), n, "gap-field stream")?;
        streams.position_bits += bits;
        coded_stream_bytes += bits.div_ceil(8);
        streams.position_table_bits += 8 << field_bits(*kind);
        fields.push((*kind, symbols, 0usize));
    }

    // per codebook, the elements decoded so far: where each tensor's dither
    // offsets start
    let mut decoded_so_far = vec![0u64; codebooks.len()];
    let mut value_of = |b: usize, assignment: &[u32]| -> Vec<f32> {
        let (centres, _, _, dither) = &codebooks[b];
        let start = decoded_so_far[b];
        decoded_so_far[b] += assignment.len() as u64;
        dequantize(centres, assignment, dither.as_ref(), start)
    };
    let mut tensors = Vec::with_capacity(entries.len());
    for (e, from_context) in entries.into_iter().zip(context_survivors) {
        let (values, stored) = match e.storage {
            STORED_RAW => {
                streams.float_bits += 32 * e.numel;
                (r.f32s(e.numel, "raw floats")?, StoredAs::Raw)
            }
            STORED_PRUNED_RAW => {
                let survivors = survivors_of(&e, &mut fields)?;
                streams.float_bits += 32 * e.survivors;
                let stored = r.f32s(e.survivors, "survivors' floats")?;
                let mut values = vec![0f32; e.numel as usize];
                for (&p, &v) in survivors.iter().zip(&stored) {
                    values[p as usize] = v;
                }
                (values, StoredAs::PrunedRaw { survivors })
            }
            STORED_QUANTIZED => {
                let assignment: Vec<u32> = indices[e.codebook]
                    .by_ref()
                    .take(e.numel as usize)
                    .collect();
                let values = value_of(e.codebook, &assignment);
                (
                    values,
                    StoredAs::Quantized {
                        codebook: e.codebook,
                        assignment,
                    },
                )
            }
            _ => {
                let assignment: Vec<u32> = indices[e.codebook]
                    .by_ref()
                    .take(e.survivors as usize)
                    .collect();
                let survivors = match from_context {
                    Some(survivors) => survivors,
                    None => survivors_of(&e, &mut fields)?,
                };
                let mut values = vec![0f32; e.numel as usize];
                for (&p, v) in survivors.iter().zip(value_of(e.codebook, &assignment)) {
                    values[p as usize] = v;
                }
                (
                    values,
                    StoredAs::Pruned {
                        codebook: e.codebook,
                        assignment,
                        survivors,
                    },
                )
            }
        };
        tensors.push(DecodedTensor {
            name: e.name,
            shape: e.shape,
            kind: e.kind,
            values,
            stored,
        });
    }
    let metadata = if version == VERSION_WITHOUT_METADATA {
        Metadata::new()
    } else {
        read_metadata(&mut r)?
    };
    if r.remaining() > 0 {
        return Err(corrupt(format!(
            "{} bytes left over at offset {}",
            r.remaining(),
            r.offset()
        )));
    }
    streams.payload_bytes = (streams.codebook_bits
        + streams.code_table_bits
        + streams.position_table_bits
        + streams.float_bits)
        / 8
        + coded_stream_bytes;
    streams.header_bytes = bytes.len() as u64 - streams.payload_bytes;
    Ok(Decoded {
        tensors,
        dithers: codebooks.iter().map(|c| c.3).collect(),
        codebooks: codebooks
            .into_iter()
            .map(|(c, coding, _, _)| (c, coding))
            .collect(),
        streams,
        metadata,
    })
}
