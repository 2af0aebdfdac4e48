//! Writing a `.nqz` file (layout in `FORMAT.md`).

use std::collections::HashSet;

use super::reader::Put;
use super::{
    coding_code, field_bits, CodebookIn, EntryKind, Metadata, Storage, StreamBits, TensorIn,
    DITHERED, MAGIC, MAX_DIMS, POSITION_KINDS, PREAMBLE_BYTES, STORED_PRUNED, STORED_PRUNED_RAW,
    STORED_QUANTIZED, STORED_RAW, VERSION, VERSION_WITHOUT_CONTEXT, VERSION_WITHOUT_DITHER,
    VERSION_WITHOUT_METADATA,
};
use crate::context::{rows_of, stream_bits, ContextBits, ContextEncoder};
use crate::dither::Dither;
use crate::error::{QuantError, Result};
use crate::huffman::{BitWriter, Bits, Code, Coding, HuffmanCode};
use crate::size::{check_survivors, gap_fields};

/// A written file and the size of each of its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The whole file.
    pub bytes: Vec<u8>,
    /// Bits per payload stream, payload and header bytes.
    pub streams: StreamBits,
    /// Cluster counts of each stored codebook (empty clusters dropped), in
    /// file order: what [`compressed_size`](crate::size::compressed_size)
    /// takes.
    pub codebook_counts: Vec<Vec<u64>>,
    /// The bits of the two streams of each context-coded codebook, in the
    /// order of `codebook_counts` (empty unless every codebook is context
    /// coded): what `compressed_size` takes for [`Coding::Context`], whose
    /// length depends on the symbols' order and not only on their counts.
    pub context_bits: Vec<ContextBits>,
}

fn bad(name: &str, reason: impl std::fmt::Display) -> QuantError {
    QuantError::InTensor {
        name: name.to_owned(),
        source: Box::new(QuantError::Inconsistent(reason.to_string())),
    }
}

fn element_count(t: &TensorIn<'_>) -> Result<u64> {
    if t.shape.len() > MAX_DIMS {
        return Err(bad(
            t.name,
            format!("{} dimensions, at most {MAX_DIMS}", t.shape.len()),
        ));
    }
    t.shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(t.name, format!("shape {:?} overflows u64", t.shape)))
}

/// The stored cluster indices of a quantized tensor, with its codebook.
fn quantized_part<'a>(t: &TensorIn<'a>) -> Option<(usize, &'a [u32])> {
    match t.storage {
        Storage::Raw(_) | Storage::PrunedRaw { .. } => None,
        Storage::Quantized {
            codebook,
            assignment,
        }
        | Storage::Pruned {
            codebook,
            assignment,
            ..
        } => Some((codebook, assignment)),
    }
}

/// The element count of a pruned tensor (`stored` values or indices for
/// `survivors`), after checking that they agree and that its kind gives
/// the gap fields their width.
fn pruned_count(t: &TensorIn<'_>, stored: usize, survivors: &[u64], numel: u64) -> Result<u64> {
    if t.kind == EntryKind::Other {
        return Err(bad(
            t.name,
            "a pruned tensor must be conv or linear (the gap-field width)",
        ));
    }
    check_survivors(survivors, numel).map_err(|e| bad(t.name, e))?;
    if stored != survivors.len() {
        return Err(bad(
            t.name,
            format!("{stored} stored values for {} survivors", survivors.len()),
        ));
    }
    Ok(numel)
}

/// Checks each tensor against its shape and the codebooks.
fn check_tensors(codebooks: &[CodebookIn<'_>], tensors: &[TensorIn<'_>]) -> Result<Vec<u64>> {
    let mut names = HashSet::new();
    let mut numels = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.len() > usize::from(u16::MAX) {
            return Err(bad(t.name, "name longer than 65535 bytes"));
        }
        if !names.insert(t.name) {
            return Err(bad(t.name, "name used twice"));
        }
        let numel = element_count(t)?;
        let stored = match t.storage {
            Storage::Raw(values) => values.len() as u64,
            Storage::Quantized { assignment, .. } => assignment.len() as u64,
            Storage::Pruned {
                assignment: per_survivor,
                survivors,
                ..
            } => pruned_count(t, per_survivor.len(), survivors, numel)?,
            Storage::PrunedRaw {
                values: per_survivor,
                survivors,
            } => pruned_count(t, per_survivor.len(), survivors, numel)?,
        };
        if stored != numel {
            return Err(bad(
                t.name,
                format!("{stored} values for shape {:?} ({numel} elements)", t.shape),
            ));
        }
        if let Some((b, assignment)) = quantized_part(t) {
            let Some(cb) = codebooks.get(b) else {
                return Err(bad(
                    t.name,
                    format!("codebook {b} of {} does not exist", codebooks.len()),
                ));
            };
            let k = cb.centres.len();
            if let Some(i) = assignment.iter().position(|&a| a as usize >= k) {
                return Err(bad(
                    t.name,
                    format!(
                        "cluster index {} at {i} is outside codebook {b} of {k} clusters",
                        assignment[i]
                    ),
                ));
            }
        }
        numels.push(numel);
    }
    Ok(numels)
}

/// A codebook as stored: only its used clusters, renumbered in order.
struct StoredCodebook {
    centres: Vec<f32>,
    counts: Vec<u64>,
    coding: Coding,
    dither: Option<Dither>,
    /// Old cluster index -> new one (`u32::MAX` when dropped).
    remap: Vec<u32>,
    code: Option<Code>,
}

/// Keeps the codebooks some tensor refers to, each with its used clusters;
/// returns them and the old -> new codebook index map.
fn stored_codebooks(
    codebooks: &[CodebookIn<'_>],
    tensors: &[TensorIn<'_>],
) -> Result<(Vec<StoredCodebook>, Vec<Option<u32>>)> {
    let mut referenced = vec![false; codebooks.len()];
    let mut counts: Vec<Vec<u64>> = codebooks.iter().map(|c| vec![0; c.centres.len()]).collect();
    for t in tensors {
        if let Some((b, assignment)) = quantized_part(t) {
            referenced[b] = true;
            for &a in assignment {
                counts[b][a as usize] += 1;
            }
        }
    }
    let mut stored = Vec::new();
    let mut new_index = vec![None; codebooks.len()];
    for (b, cb) in codebooks.iter().enumerate() {
        if !referenced[b] {
            continue;
        }
        let mut remap = vec![u32::MAX; cb.centres.len()];
        let mut centres = Vec::new();
        let mut used = Vec::new();
        for (j, &c) in counts[b].iter().enumerate() {
            if c > 0 {
                remap[j] = centres.len() as u32;
                centres.push(cb.centres[j]);
                used.push(c);
            }
        }
        let code = if used.is_empty() || cb.coding == Coding::Context {
            None
        } else {
            Some(Code::new(cb.coding, &used)?)
        };
        new_index[b] = Some(stored.len() as u32);
        stored.push(StoredCodebook {
            centres,
            counts: used,
            coding: cb.coding,
            dither: cb.dither,
            remap,
            code,
        });
    }
    if stored.len() > u32::MAX as usize {
        return Err(QuantError::Inconsistent("more than 2^32 codebooks".into()));
    }
    Ok((stored, new_index))
}

/// One gap-field stream per kind of pruned tensor.
struct PositionStream {
    kind: EntryKind,
    code: HuffmanCode,
    bits: Bits,
}

/// Whether `t`'s indices and survivor flags are context coded.
fn context_coded(t: &TensorIn<'_>, codebooks: &[CodebookIn<'_>]) -> bool {
    quantized_part(t).is_some_and(|(b, _)| codebooks[b].coding == Coding::Context)
}

/// The gap fields of every pruned tensor that is not context coded
/// (`fields[t]`, empty for others) and the coded stream of each kind present.
fn position_streams(
    codebooks: &[CodebookIn<'_>],
    tensors: &[TensorIn<'_>],
    numels: &[u64],
) -> Result<(Vec<Vec<u32>>, Vec<PositionStream>)> {
    let mut fields = vec![Vec::new(); tensors.len()];
    let mut streams = Vec::new();
    for kind in POSITION_KINDS {
        let bits = field_bits(kind);
        let mut counts = vec![0u64; 1 << bits];
        let mut present = false;
        for (i, t) in tensors.iter().enumerate() {
            if let (
                Storage::Pruned { survivors, .. } | Storage::PrunedRaw { survivors, .. },
                true,
            ) = (t.storage, t.kind == kind && !context_coded(t, codebooks))
            {
                present = true;
                fields[i] = gap_fields(survivors, numels[i], bits).map_err(|e| bad(t.name, e))?;
                for &f in &fields[i] {
                    counts[f as usize] += 1;
                }
            }
        }
        if !present {
            continue;
        }
        let code = HuffmanCode::from_counts(&counts)?;
        let mut w = BitWriter::new();
        for (i, t) in tensors.iter().enumerate() {
            if t.kind == kind && !fields[i].is_empty() {
                code.encode_into(&fields[i], &mut w)?;
            }
        }
        streams.push(PositionStream {
            kind,
            code,
            bits: w.finish(),
        });
    }
    Ok((fields, streams))
}

/// Section 7: the count, then each key and value with its length.
fn put_metadata(body: &mut Vec<u8>, metadata: &Metadata) -> Result<()> {
    let too_long = |what: &str, key: &str| {
        QuantError::Inconsistent(format!("metadata {what} of `{key:.40}` is too long"))
    };
    body.put_u32(
        u32::try_from(metadata.len())
            .map_err(|_| QuantError::Inconsistent("more than 2^32 metadata entries".into()))?,
    );
    for (key, value) in metadata {
        body.put_u16(u16::try_from(key.len()).map_err(|_| too_long("key", key))?);
        body.extend_from_slice(key.as_bytes());
        body.put_u32(u32::try_from(value.len()).map_err(|_| too_long("value", key))?);
        body.extend_from_slice(value.as_bytes());
    }
    Ok(())
}

fn put_stream(body: &mut Vec<u8>, bits: &Bits) {
    body.put_u64(bits.bits);
    body.extend_from_slice(&bits.bytes);
}

/// A context-coded stream as bits: its 32-bit words, little-endian.
fn words_as_bits(words: &[u32]) -> Bits {
    Bits {
        bytes: words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        bits: stream_bits(words),
    }
}

/// The index and flag streams of context-coded codebook `s` (stored
/// index), over its tensors in table order.
fn context_streams(
    cb: &StoredCodebook,
    s: usize,
    tensors: &[TensorIn<'_>],
    new_index: &[Option<u32>],
) -> Result<(Bits, Bits)> {
    let k = u32::try_from(cb.centres.len())
        .map_err(|_| QuantError::Inconsistent("a codebook of 2^32 clusters or more".into()))?;
    let mut indices = ContextEncoder::new();
    let mut flags = ContextEncoder::new();
    for t in tensors {
        let Some((b, assignment)) = quantized_part(t) else {
            continue;
        };
        if new_index[b] != Some(s as u32) {
            continue;
        }
        if let Storage::Pruned { survivors, .. } = t.storage {
            let numel = t.shape.iter().product();
            flags
                .survivors(rows_of(t.shape), numel, survivors)
                .map_err(|e| bad(t.name, e))?;
        }
        let renumbered: Vec<u32> = assignment.iter().map(|&a| cb.remap[a as usize]).collect();
        indices
            .indices(k, &renumbered)
            .map_err(|e| bad(t.name, e))?;
    }
    Ok((
        words_as_bits(&indices.finish()),
        words_as_bits(&flags.finish()),
    ))
}

/// Writes `tensors` and their `codebooks` as a `.nqz` file.
///
/// Clusters no weight uses are dropped and the indices renumbered, and
/// codebooks no tensor refers to are left out, so the file's codebooks are
/// exactly what the size accounting counts ([`Encoded::codebook_counts`]).
/// Fails, naming the tensor, on a duplicate name, a shape that does not
/// match the values, a cluster index outside its codebook, survivors that
/// are not strictly increasing inside the tensor, or a pruned tensor of
/// kind `Other`.
pub fn encode(codebooks: &[CodebookIn<'_>], tensors: &[TensorIn<'_>]) -> Result<Encoded> {
    encode_with_metadata(codebooks, tensors, &Metadata::new())
}

/// [`encode`], with `metadata` in the file's metadata section (version 2,
/// or 3 with a context-coded codebook; without metadata, pruned float
/// tensors and context coding the file is version 1). The
/// metadata is header, not payload: it does not count in the size
/// accounting. Fails on a key longer than 65,535 bytes or a value longer
/// than 2^32 - 1.
pub fn encode_with_metadata(
    codebooks: &[CodebookIn<'_>],
    tensors: &[TensorIn<'_>],
    metadata: &Metadata,
) -> Result<Encoded> {
    if tensors.len() > u32::MAX as usize {
        return Err(QuantError::Inconsistent("more than 2^32 tensors".into()));
    }
    for (b, cb) in codebooks.iter().enumerate() {
        if let Some(d) = cb.dither {
            if !(d.step.is_finite() && d.step > 0.0) {
                return Err(QuantError::Inconsistent(format!(
                    "codebook {b}: dither step {} is not positive and finite",
                    d.step
                )));
            }
        }
    }
    let numels = check_tensors(codebooks, tensors)?;
    let (stored, new_index) = stored_codebooks(codebooks, tensors)?;
    let (fields, positions) = position_streams(codebooks, tensors, &numels)?;

    // per stored codebook: its index stream, and its survivor flags when
    // context coded
    let mut index_streams = Vec::with_capacity(stored.len());
    let mut flag_streams = Vec::with_capacity(stored.len());
    for (s, cb) in stored.iter().enumerate() {
        if cb.coding == Coding::Context {
            let (indices, flags) = context_streams(cb, s, tensors, &new_index)?;
            index_streams.push(indices);
            flag_streams.push(Some(flags));
            continue;
        }
        flag_streams.push(None);
        let mut w = BitWriter::new();
        if let Some(code) = &cb.code {
            for t in tensors {
                if let Some((b, assignment)) = quantized_part(t) {
                    if new_index[b] == Some(s as u32) {
                        let renumbered: Vec<u32> =
                            assignment.iter().map(|&a| cb.remap[a as usize]).collect();
                        code.encode_into(&renumbered, &mut w)?;
                    }
                }
            }
        }
        index_streams.push(w.finish());
    }

    let mut body = Vec::new();
    let mut streams = StreamBits::default();
    body.put_u32(tensors.len() as u32);
    for (i, t) in tensors.iter().enumerate() {
        body.put_u16(t.name.len() as u16);
        body.extend_from_slice(t.name.as_bytes());
        body.put_u8(t.kind.code());
        let storage = match t.storage {
            Storage::Raw(_) => STORED_RAW,
            Storage::Quantized { .. } => STORED_QUANTIZED,
            Storage::Pruned { .. } => STORED_PRUNED,
            Storage::PrunedRaw { .. } => STORED_PRUNED_RAW,
        };
        body.put_u8(storage);
        body.put_u8(t.shape.len() as u8);
        for &d in t.shape {
            body.put_u64(d);
        }
        if let Some((b, _)) = quantized_part(t) {
            body.put_u32(new_index[b].expect("referenced codebooks are stored"));
        }
        if let Storage::Pruned { survivors, .. } | Storage::PrunedRaw { survivors, .. } = t.storage
        {
            body.put_u64(survivors.len() as u64);
            body.put_u64(fields[i].len() as u64);
        }
    }
    body.put_u32(stored.len() as u32);
    for cb in &stored {
        let dithered = if cb.dither.is_some() { DITHERED } else { 0 };
        body.put_u8(coding_code(cb.coding) | dithered);
        body.put_u32(cb.centres.len() as u32);
        body.put_f32s(&cb.centres);
        streams.codebook_bits += 32 * cb.centres.len() as u64;
        if let Some(d) = cb.dither {
            body.put_u64(d.seed);
            body.put_f32s(&[d.step]);
        }
        if let Some(Code::Huffman(code)) = &cb.code {
            body.extend_from_slice(&code.length_table());
            streams.code_table_bits += 8 * cb.centres.len() as u64;
        }
    }
    let mask = positions.iter().fold(0u8, |m, p| m | (1 << p.kind.code()));
    body.put_u8(mask);
    for p in &positions {
        body.extend_from_slice(&p.code.length_table());
        streams.position_table_bits += 8 << field_bits(p.kind);
    }
    for (bits, flags) in index_streams.iter().zip(&flag_streams) {
        put_stream(&mut body, bits);
        streams.index_bits += bits.bits;
        if let Some(flags) = flags {
            put_stream(&mut body, flags);
            streams.position_bits += flags.bits;
        }
    }
    for p in &positions {
        put_stream(&mut body, &p.bits);
        streams.position_bits += p.bits.bits;
    }
    for t in tensors {
        if let Storage::Raw(values) | Storage::PrunedRaw { values, .. } = t.storage {
            body.put_f32s(values);
            streams.float_bits += 32 * values.len() as u64;
        }
    }
    // pruned float tensors and metadata are version 2; without either the
    // file is version 1, byte for byte as older writers wrote it
    let version_4 = stored.iter().any(|cb| cb.dither.is_some());
    let version_3 = version_4 || stored.iter().any(|cb| cb.coding == Coding::Context);
    let version_2 = version_3
        || !metadata.is_empty()
        || tensors
            .iter()
            .any(|t| matches!(t.storage, Storage::PrunedRaw { .. }));
    if version_2 {
        put_metadata(&mut body, metadata)?;
    }

    let whole_bytes = streams.codebook_bits
        + streams.code_table_bits
        + streams.position_table_bits
        + streams.float_bits;
    streams.payload_bytes = whole_bytes / 8
        + index_streams
            .iter()
            .chain(flag_streams.iter().flatten())
            .chain(positions.iter().map(|p| &p.bits))
            .map(|b| b.bits.div_ceil(8))
            .sum::<u64>();

    let mut bytes = Vec::with_capacity(PREAMBLE_BYTES as usize + body.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.put_u16(if version_4 {
        VERSION
    } else if version_3 {
        VERSION_WITHOUT_DITHER
    } else if version_2 {
        VERSION_WITHOUT_CONTEXT
    } else {
        VERSION_WITHOUT_METADATA
    });
    bytes.put_u16(0);
    bytes.put_u64(body.len() as u64);
    bytes.put_u32(crc32c::crc32c(&body));
    bytes.extend_from_slice(&body);
    streams.header_bytes = bytes.len() as u64 - streams.payload_bytes;
    let all_context = !stored.is_empty() && stored.iter().all(|c| c.coding == Coding::Context);
    let context_bits = if all_context {
        stored
            .iter()
            .zip(index_streams.iter().zip(&flag_streams))
            .filter(|(c, _)| !c.counts.is_empty())
            .map(|(_, (indices, flags))| ContextBits {
                index_bits: indices.bits,
                position_bits: flags.as_ref().map_or(0, |f| f.bits),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Encoded {
        bytes,
        streams,
        codebook_counts: stored
            .into_iter()
            .map(|c| c.counts)
            .filter(|c| !c.is_empty())
            .collect(),
        context_bits,
    })
}
