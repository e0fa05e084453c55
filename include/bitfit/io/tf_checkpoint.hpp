#pragma once
/// @file tf_checkpoint.hpp
/// Reading TensorFlow tensor-bundle checkpoints (TF1 `Saver` V2 checkpoints, TF2
/// `tf.train.Checkpoint` and SavedModel `variables/`) without TensorFlow: `<prefix>.index`, a
/// LevelDB-format table mapping tensor names to BundleEntryProtos, plus the raw tensor bytes in
/// `<prefix>.data-NNNNN-of-MMMMM`. Every file is memory-mapped and validated completely on open
/// (table structure and checksums, every entry, every tensor's byte range and crc32c), so no
/// later access can read outside a file. The format and the reasons for writing our own table and
/// protobuf decoding are in docs/TF_CHECKPOINT.md.

#include <bitfit/core/error.hpp>
#include <bitfit/io/safetensors.hpp>  // detail::mapped_file, load_le, shape_string

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace bitfit {

/// TensorFlow's DataType enum (tensorflow/core/framework/types.proto), numbered as on disk.
enum class tf_dtype : int {
  dt_float = 1, dt_double = 2, dt_int32 = 3, dt_uint8 = 4, dt_int16 = 5, dt_int8 = 6, dt_string = 7,
  dt_complex64 = 8, dt_int64 = 9, dt_bool = 10, dt_qint8 = 11, dt_quint8 = 12, dt_qint32 = 13,
  dt_bfloat16 = 14, dt_qint16 = 15, dt_quint16 = 16, dt_uint16 = 17, dt_complex128 = 18, dt_half = 19,
  dt_resource = 20, dt_variant = 21, dt_uint32 = 22, dt_uint64 = 23
};

/// TensorFlow's spelling of a dtype ("DT_FLOAT", "DT_INT64", ...), or "DataType N" for numbers
/// TensorFlow does not define.
inline std::string tf_dtype_name(tf_dtype t) {
  static constexpr std::array<std::string_view, 24> names = {
      "DT_INVALID", "DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_UINT8", "DT_INT16", "DT_INT8", "DT_STRING", "DT_COMPLEX64",
      "DT_INT64", "DT_BOOL", "DT_QINT8", "DT_QUINT8", "DT_QINT32", "DT_BFLOAT16", "DT_QINT16", "DT_QUINT16",
      "DT_UINT16", "DT_COMPLEX128", "DT_HALF", "DT_RESOURCE", "DT_VARIANT", "DT_UINT32", "DT_UINT64"};
  const int n = static_cast<int>(t);
  if (n >= 0 && n < int(names.size())) return std::string(names[std::size_t(n)]);
  return "DataType " + std::to_string(n);
}

/// One tensor of a bundle, as its index entry describes it.
struct tf_tensor_info {
  std::string name;
  tf_dtype dtype = tf_dtype::dt_float;
  std::vector<std::int64_t> shape;
  std::uint32_t shard = 0;          ///< which data file holds the bytes
  std::uint64_t offset = 0, size = 0;  ///< byte range in that data file
  std::uint32_t masked_crc32c = 0;  ///< of the tensor's bytes, as stored in the entry

  /// Number of elements (1 for a scalar of shape []).
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {

/// Fuzzing builds (OSS-Fuzz convention) skip checksum comparisons, so that mutated inputs reach
/// the code behind them; everything else is still checked.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
inline constexpr bool tf_verify_checksums = false;
#else
inline constexpr bool tf_verify_checksums = true;
#endif

// ---- crc32c (Castagnoli), as LevelDB and TensorFlow use it ----

inline constexpr std::array<std::uint32_t, 256> crc32c_table = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    t[i] = c;
  }
  return t;
}();

/// Table-driven crc32c, for CPUs without SSE4.2 (about 0.5 GB/s).
inline std::uint32_t crc32c_extend_portable(std::uint32_t crc, const char* p, std::size_t n) {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = crc32c_table[(crc ^ std::uint8_t(p[i])) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
/// The SSE4.2 crc32 instruction computes exactly crc32c, 8 bytes per instruction (~8 GB/s), which
/// keeps verifying a 440 MB BERT checkpoint well under a second.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_extend_sse42(std::uint32_t crc, const char* p,
                                                                            std::size_t n) {
  std::uint64_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = std::uint32_t(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, std::uint8_t(*p));
  return ~c32;
}
#endif

/// crc32c of `n` more bytes after a crc of earlier bytes (0 to start).
inline std::uint32_t crc32c_extend(std::uint32_t crc, const char* p, std::size_t n) {
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  if (has_sse42) return crc32c_extend_sse42(crc, p, n);
#endif
  return crc32c_extend_portable(crc, p, n);
}

/// LevelDB's and TensorFlow's masking of a stored crc (so that a crc of data holding crcs is not
/// trivially zero).
inline std::uint32_t crc32c_mask(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

// ---- bounds-checked decoding of LevelDB and protobuf encodings ----

/// A name or key for a message: printable ASCII as is, other bytes as \xNN.
inline std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", unsigned(std::uint8_t(c)));
      out += hex;
    }
  }
  return out;
}

/// A cursor over bytes; every read is bounds-checked and throws bitfit::error prefixed by `where`
/// (which names the file, and the block or tensor).
class byte_reader {
 public:
  byte_reader(std::string_view bytes, std::string_view where) : rest_(bytes), where_(where) {}

  bool done() const { return rest_.empty(); }
  std::size_t remaining() const { return rest_.size(); }

  /// Base-128 varint of at most 10 bytes whose value fits 64 bits.
  std::uint64_t varint64() {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (rest_.empty()) fail("truncated varint");
      const auto b = std::uint8_t(rest_[0]);
      rest_.remove_prefix(1);
      if (shift == 63 && b > 1) fail("varint longer than 10 bytes or overflowing 64 bits");
      v |= std::uint64_t(b & 0x7Fu) << shift;
      if (b < 0x80) return v;
    }
  }
  std::uint32_t varint32() {
    const std::uint64_t v = varint64();
    if (v > std::numeric_limits<std::uint32_t>::max()) fail("varint " + std::to_string(v) + " overflows 32 bits");
    return std::uint32_t(v);
  }
  std::string_view bytes(std::uint64_t n) {
    if (n > rest_.size())
      fail("length " + std::to_string(n) + " runs past the end (" + std::to_string(rest_.size()) + " bytes left)");
    const auto out = rest_.substr(0, std::size_t(n));
    rest_.remove_prefix(std::size_t(n));
    return out;
  }
  std::uint32_t fixed32() { return load_le<std::uint32_t>(reinterpret_cast<const std::byte*>(bytes(4).data())); }
  std::uint64_t fixed64() { return load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(bytes(8).data())); }

  [[noreturn]] void fail(const std::string& problem) const { throw error(std::string(where_) + ": " + problem); }

 private:
  std::string_view rest_;
  std::string_view where_;
};

/// Protobuf wire types; 3 and 4 (groups) are obsolete and never appear in these messages.
enum class wire_type : std::uint32_t { varint = 0, fixed64 = 1, length = 2, fixed32 = 5 };

/// One decoded field: its number, wire type and payload (`number` for varint/fixed, `bytes` for
/// length-delimited).
struct proto_field {
  std::uint32_t field = 0;
  wire_type type = wire_type::varint;
  std::uint64_t number = 0;
  std::string_view bytes;
};

inline proto_field next_field(byte_reader& in) {
  const std::uint64_t tag = in.varint64();
  proto_field f;
  if (tag >> 3 == 0 || tag >> 3 > 0x1FFFFFFFu) in.fail("invalid protobuf field number " + std::to_string(tag >> 3));
  f.field = std::uint32_t(tag >> 3);
  switch (tag & 7) {
    case 0: f.type = wire_type::varint, f.number = in.varint64(); break;
    case 1: f.type = wire_type::fixed64, f.number = in.fixed64(); break;
    case 2: f.type = wire_type::length, f.bytes = in.bytes(in.varint64()); break;
    case 5: f.type = wire_type::fixed32, f.number = in.fixed32(); break;
    case 3: case 4: in.fail("protobuf groups (wire type " + std::to_string(tag & 7) + ") are not supported");
    default: in.fail("invalid protobuf wire type " + std::to_string(tag & 7));
  }
  return f;
}

inline void expect_wire(const byte_reader& in, const proto_field& f, wire_type t, const char* what) {
  if (f.type != t)
    in.fail(std::string(what) + " (field " + std::to_string(f.field) + ") has wire type " +
            std::to_string(unsigned(f.type)) + ", expected " + std::to_string(unsigned(t)));
}

/// A protobuf int32/enum: sign-extended to 64 bits on the wire; anything outside int32 is corrupt.
inline std::int32_t proto_int32(const byte_reader& in, const proto_field& f, const char* what) {
  expect_wire(in, f, wire_type::varint, what);
  const auto v = std::int64_t(f.number);
  if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
    in.fail(std::string(what) + " " + std::to_string(v) + " does not fit int32");
  return std::int32_t(v);
}

/// A protobuf int64 that must not be negative (offsets, sizes, dimensions).
inline std::uint64_t proto_nonnegative(const byte_reader& in, const proto_field& f, const char* what) {
  expect_wire(in, f, wire_type::varint, what);
  if (std::int64_t(f.number) < 0) in.fail(std::string(what) + " is negative (" + std::to_string(std::int64_t(f.number)) + ")");
  return f.number;
}

/// TensorShapeProto: repeated Dim dim = 2 {int64 size = 1; string name = 2}; bool unknown_rank = 3.
inline void parse_tensor_shape(std::string_view bytes, std::string_view where, std::vector<std::int64_t>& shape) {
  byte_reader in(bytes, where);
  while (!in.done()) {
    const proto_field f = next_field(in);
    if (f.field == 2) {
      expect_wire(in, f, wire_type::length, "shape dim");
      byte_reader dim(f.bytes, where);
      std::uint64_t size = 0;
      while (!dim.done()) {
        const proto_field d = next_field(dim);
        if (d.field == 1) size = proto_nonnegative(dim, d, "shape dimension");
      }
      shape.push_back(std::int64_t(size));
    } else if (f.field == 3) {
      expect_wire(in, f, wire_type::varint, "shape unknown_rank");
      if (f.number != 0) in.fail("shape has unknown rank");
    }
  }
}

/// Decodes a BundleEntryProto: DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3;
/// int64 offset = 4; int64 size = 5; fixed32 crc32c = 6; repeated TensorSliceProto slices = 7.
/// Unknown fields are skipped; slices (partitioned variables) are rejected. The name is left empty.
/// Throws bitfit::error prefixed by `where`.
inline tf_tensor_info parse_bundle_entry(std::string_view bytes, std::string_view where) {
  byte_reader in(bytes, where);
  tf_tensor_info t;
  bool has_dtype = false;
  while (!in.done()) {
    const proto_field f = next_field(in);
    switch (f.field) {
      case 1: t.dtype = tf_dtype(proto_int32(in, f, "dtype")), has_dtype = true; break;
      case 2:
        expect_wire(in, f, wire_type::length, "shape");
        parse_tensor_shape(f.bytes, where, t.shape);
        break;
      case 3: {
        const std::int32_t shard = proto_int32(in, f, "shard_id");
        if (shard < 0) in.fail("shard_id is negative (" + std::to_string(shard) + ")");
        t.shard = std::uint32_t(shard);
        break;
      }
      case 4: t.offset = proto_nonnegative(in, f, "offset"); break;
      case 5: t.size = proto_nonnegative(in, f, "size"); break;
      case 6:
        expect_wire(in, f, wire_type::fixed32, "crc32c");
        t.masked_crc32c = std::uint32_t(f.number);
        break;
      case 7: in.fail("the tensor is partitioned into slices, which this reader does not support");
      default: break;
    }
  }
  if (!has_dtype) in.fail("entry has no dtype");
  return t;
}

/// The bundle format version this reader implements (TensorFlow's kTensorBundleVersion).
inline constexpr std::int32_t tf_bundle_version = 1;

/// Decodes and checks a BundleHeaderProto: int32 num_shards = 1; Endianness endianness = 2
/// (LITTLE = 0, BIG = 1); VersionDef version = 3 {int32 producer = 1; int32 min_consumer = 2;
/// repeated int32 bad_consumers = 3}. Returns num_shards.
inline std::uint32_t parse_bundle_header(std::string_view bytes, std::string_view where) {
  byte_reader in(bytes, where);
  std::int32_t num_shards = 0, endianness = 0;
  while (!in.done()) {
    const proto_field f = next_field(in);
    if (f.field == 1) num_shards = proto_int32(in, f, "num_shards");
    if (f.field == 2) endianness = proto_int32(in, f, "endianness");
    if (f.field != 3) continue;
    expect_wire(in, f, wire_type::length, "version");
    byte_reader version(f.bytes, where);
    while (!version.done()) {
      const proto_field v = next_field(version);
      if (v.field == 2) {
        const std::int32_t min_consumer = proto_int32(version, v, "version min_consumer");
        if (min_consumer > tf_bundle_version)
          version.fail("the checkpoint needs a reader of bundle version " + std::to_string(min_consumer) +
                       " or newer; this one reads version " + std::to_string(tf_bundle_version));
      }
      if (v.field != 3) continue;
      std::vector<std::int32_t> bad;
      if (v.type == wire_type::length) {  // packed, as proto3 writes repeated int32
        byte_reader packed(v.bytes, where);
        while (!packed.done()) bad.push_back(proto_int32(packed, {3, wire_type::varint, packed.varint64(), {}}, "bad_consumers"));
      } else {
        bad.push_back(proto_int32(version, v, "bad_consumers"));
      }
      if (std::ranges::find(bad, tf_bundle_version) != bad.end())
        version.fail("the checkpoint excludes readers of bundle version " + std::to_string(tf_bundle_version));
    }
  }
  if (endianness != 0)
    in.fail(endianness == 1 ? std::string("big-endian bundles are not supported")
                            : "unknown endianness " + std::to_string(endianness));
  if (num_shards < 1) in.fail("num_shards is " + std::to_string(num_shards) + ", must be at least 1");
  return std::uint32_t(num_shards);
}

// ---- LevelDB table (SSTable) ----

inline constexpr std::uint64_t sstable_magic = 0xdb4775248b80fb57ull;
inline constexpr std::size_t sstable_footer_size = 48;  // two handles padded to 40 bytes + magic
inline constexpr std::size_t sstable_trailer_size = 5;  // compression type + masked crc32c

struct block_handle {
  std::uint64_t offset = 0, size = 0;
};

inline block_handle read_block_handle(byte_reader& in) {
  block_handle h;
  h.offset = in.varint64();
  h.size = in.varint64();
  return h;
}

/// The contents of the block at `h`, after checking that it and its trailer lie before the footer,
/// that it is uncompressed (TensorFlow writes bundle indexes without compression), and its crc.
inline std::string_view table_block(std::string_view file, block_handle h, const std::string& path, const char* what) {
  const std::size_t end = file.size() - sstable_footer_size;
  const std::string where = path + ": " + what + " block at offset " + std::to_string(h.offset) + " size " +
                            std::to_string(h.size);
  if (h.offset > end || h.size > end - h.offset || end - h.offset - h.size < sstable_trailer_size)
    throw error(where + ": lies outside the file (" + std::to_string(file.size()) + " bytes)");
  const std::string_view block = file.substr(std::size_t(h.offset), std::size_t(h.size));
  const auto type = std::uint8_t(file[std::size_t(h.offset + h.size)]);
  if (type != 0)
    throw error(where + ": compression type " + std::to_string(type) + " is not supported (only uncompressed)");
  const auto stored = load_le<std::uint32_t>(reinterpret_cast<const std::byte*>(block.data() + block.size() + 1));
  const std::uint32_t actual = crc32c_mask(crc32c_extend(crc32c_extend(0, block.data(), block.size()), block.data() + block.size(), 1));
  if (tf_verify_checksums && stored != actual) throw error(where + ": checksum mismatch (corrupt index file)");
  return block;
}

/// Calls `on_entry(key, value)` for every entry of a block, in order, after checking the restart
/// array: in range, strictly increasing, starting at 0, and each restart at an entry whose key
/// shares nothing with its predecessor (as LevelDB's binary search relies on).
template <class OnEntry>
void for_each_block_entry(std::string_view block, const std::string& where, OnEntry&& on_entry) {
  const auto fail = [&](const std::string& problem) { throw error(where + ": " + problem); };
  if (block.size() < 4) fail("block of " + std::to_string(block.size()) + " bytes has no restart count");
  const auto num_restarts = load_le<std::uint32_t>(reinterpret_cast<const std::byte*>(block.data() + block.size() - 4));
  if (num_restarts == 0 || num_restarts > (block.size() - 4) / 4)
    fail("restart count " + std::to_string(num_restarts) + " does not fit the block (" +
                   std::to_string(block.size()) + " bytes)");
  const std::size_t restarts_at = block.size() - 4 - 4 * std::size_t(num_restarts);
  auto restart = [&](std::uint32_t i) {
    return load_le<std::uint32_t>(reinterpret_cast<const std::byte*>(block.data() + restarts_at + 4 * std::size_t(i)));
  };
  if (restart(0) != 0) fail("first restart point is " + std::to_string(restart(0)) + ", not 0");

  byte_reader in(block.substr(0, restarts_at), where);
  std::string key;
  std::uint32_t next_restart = 0;
  while (!in.done()) {
    const std::size_t at = restarts_at - in.remaining();
    const std::uint32_t shared = in.varint32(), non_shared = in.varint32(), value_size = in.varint32();
    if (next_restart < num_restarts && restart(next_restart) < at)
      in.fail("restart point " + std::to_string(restart(next_restart)) + " is not at an entry");
    const bool is_restart = next_restart < num_restarts && restart(next_restart) == at;
    if (is_restart && shared != 0) in.fail("entry at restart point " + std::to_string(at) + " shares a key prefix");
    next_restart += is_restart;
    if (shared > key.size())
      in.fail("entry at " + std::to_string(at) + " shares " + std::to_string(shared) + " bytes of a " +
              std::to_string(key.size()) + "-byte key");
    key.resize(shared);
    key += in.bytes(non_shared);
    on_entry(std::string_view(key), in.bytes(value_size));
  }
  if (next_restart < num_restarts && !(restarts_at == 0 && num_restarts == 1))
    in.fail("restart point " + std::to_string(restart(next_restart)) + " is outside the entries (" +
            std::to_string(restarts_at) + " bytes)");
}

/// Calls `on_entry(key, value)` for every entry of the LevelDB table `file`, in order, after
/// checking the footer, every block, and that keys strictly increase (no duplicates) and agree
/// with the index block's separators.
template <class OnEntry>
void for_each_table_entry(std::string_view file, const std::string& path, OnEntry&& on_entry) {
  if (file.size() < sstable_footer_size)
    throw error(path + ": file is " + std::to_string(file.size()) + " bytes, too short for a table footer (48 bytes)");
  const std::string_view footer = file.substr(file.size() - sstable_footer_size);
  if (load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(footer.data() + 40)) != sstable_magic)
    throw error(path + ": bad magic number; not a TensorFlow checkpoint index (LevelDB table)");
  const std::string footer_where = path + ": footer";
  byte_reader handles(footer.substr(0, 40), footer_where);
  const block_handle metaindex = read_block_handle(handles), index = read_block_handle(handles);
  // TensorFlow writes no filter, so the metaindex block is only checked, not used.
  for_each_block_entry(table_block(file, metaindex, path, "metaindex"), path + ": metaindex block",
                       [](std::string_view, std::string_view) {});

  std::string previous;
  bool first = true;
  const std::string index_where = path + ": index block";
  for_each_block_entry(table_block(file, index, path, "index"), index_where, [&](std::string_view separator, std::string_view value) {
    byte_reader handle_in(value, index_where);
    const block_handle h = read_block_handle(handle_in);
    if (!handle_in.done()) handle_in.fail("block handle has " + std::to_string(handle_in.remaining()) + " trailing bytes");
    const std::string where = path + ": data block at offset " + std::to_string(h.offset);
    for_each_block_entry(table_block(file, h, path, "data"), where, [&](std::string_view key, std::string_view v) {
      if (!first && key <= previous)
        throw error(path + ": " + (key == previous ? "duplicate key '" + printable(key) + "'"
                                                   : "keys not sorted: '" + printable(key) + "' after '" +
                                                         printable(previous) + "'"));
      if (key > separator)
        throw error(where + ": key '" + printable(key) + "' is past its index separator '" + printable(separator) + "'");
      first = false;
      previous = key;
      on_entry(key, v);
    });
  });
}

/// TensorFlow's data file name for one shard: "<prefix>.data-00000-of-00002".
inline std::filesystem::path tf_shard_path(const std::filesystem::path& prefix, std::uint32_t shard, std::uint32_t num_shards) {
  char suffix[48];
  std::snprintf(suffix, sizeof suffix, ".data-%05u-of-%05u", shard, num_shards);
  return prefix.string() + suffix;
}

/// crc32c of a DT_STRING tensor as TensorFlow computes it: the element lengths (each as a
/// little-endian uint32, or uint64 when larger), then the masked crc of those lengths as stored,
/// then the string bytes. The data is [varint64 length]... [fixed32 masked length crc] [bytes]...
inline std::uint32_t tf_string_tensor_crc(std::string_view data, std::uint64_t numel, std::string_view where) {
  byte_reader in(data, where);
  if (numel > data.size()) in.fail(std::to_string(numel) + " strings cannot fit in " + std::to_string(data.size()) + " bytes");
  std::uint32_t crc = 0;
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < numel; ++i) {
    const std::uint64_t length = in.varint64();
    char le[8];
    const std::size_t width = length <= std::numeric_limits<std::uint32_t>::max() ? 4 : 8;
    for (std::size_t b = 0; b < width; ++b) le[b] = char((length >> (8 * b)) & 0xFF);
    crc = crc32c_extend(crc, le, width);
    if (length > data.size() || (total += length) > data.size()) in.fail("string lengths exceed the tensor's bytes");
  }
  const std::string_view length_crc = in.bytes(4);
  if (tf_verify_checksums && load_le<std::uint32_t>(reinterpret_cast<const std::byte*>(length_crc.data())) != crc32c_mask(crc))
    in.fail("checksum of the string lengths does not match");
  crc = crc32c_extend(crc, length_crc.data(), 4);
  if (in.remaining() != total)
    in.fail("string lengths add up to " + std::to_string(total) + " bytes but " + std::to_string(in.remaining()) +
            " follow them");
  const std::string_view strings = in.bytes(total);
  return crc32c_extend(crc, strings.data(), strings.size());
}

/// Bytes per element of the dtypes whose tensors are stored as raw arrays; 0 for the others.
inline std::size_t tf_dtype_size(tf_dtype t) {
  switch (t) {
    case tf_dtype::dt_int8: case tf_dtype::dt_uint8: case tf_dtype::dt_bool: case tf_dtype::dt_qint8:
    case tf_dtype::dt_quint8: return 1;
    case tf_dtype::dt_int16: case tf_dtype::dt_uint16: case tf_dtype::dt_half: case tf_dtype::dt_bfloat16:
    case tf_dtype::dt_qint16: case tf_dtype::dt_quint16: return 2;
    case tf_dtype::dt_float: case tf_dtype::dt_int32: case tf_dtype::dt_uint32: case tf_dtype::dt_qint32: return 4;
    case tf_dtype::dt_double: case tf_dtype::dt_int64: case tf_dtype::dt_uint64: case tf_dtype::dt_complex64: return 8;
    case tf_dtype::dt_complex128: return 16;
    default: return 0;
  }
}

}  // namespace detail

/// A read-only TensorFlow tensor-bundle checkpoint: `<prefix>.index` and every
/// `<prefix>.data-NNNNN-of-MMMMM`, memory-mapped and validated completely on open.
///
/// Tensors of any fixed-size dtype and DT_STRING are listed and verified; f32() reads DT_FLOAT.
/// All const members may be called from several threads at once. The files must not be modified
/// in place while open.
class tf_checkpoint {
 public:
  /// Opens `<prefix>.index` and every shard (`prefix` as TensorFlow names it, e.g.
  /// ".../variables/variables" or ".../bert_model.ckpt") and validates the index and every
  /// tensor, crc32c included; throws bitfit::error naming the file (and the tensor, if any).
  explicit tf_checkpoint(const std::filesystem::path& prefix)
      : prefix_(prefix), cache_(std::make_unique<f32_cache>()) {
    const std::filesystem::path index_path = prefix.string() + ".index";
    const detail::mapped_file index(index_path);
    read_index(std::string_view(reinterpret_cast<const char*>(index.data()), index.size()), index_path.string());
    for (std::uint32_t s = 0; s < num_shards_; ++s) shards_.emplace_back(detail::tf_shard_path(prefix, s, num_shards_));
    for (const auto& t : tensors_) verify_data(t);
  }
  tf_checkpoint(tf_checkpoint&&) noexcept = default;
  tf_checkpoint& operator=(tf_checkpoint&&) noexcept = default;
  tf_checkpoint(const tf_checkpoint&) = delete;
  tf_checkpoint& operator=(const tf_checkpoint&) = delete;
  ~tf_checkpoint() = default;

  /// The prefix the checkpoint was opened with.
  const std::filesystem::path& prefix() const { return prefix_; }

  /// Number of data files.
  std::size_t num_shards() const { return num_shards_; }

  /// Every tensor name, sorted bytewise (the index order).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  /// The entry of a tensor, or nullptr when absent.
  const tf_tensor_info* find(std::string_view name) const noexcept {
    const auto it = std::ranges::lower_bound(tensors_, name, {}, [](const tf_tensor_info& t) -> std::string_view { return t.name; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
  }

  /// The entry of a tensor; throws naming the checkpoint and the tensor when absent.
  const tf_tensor_info& info(std::string_view name) const {
    const tf_tensor_info* t = find(name);
    if (!t) throw error(prefix_.string() + ": tensor '" + detail::printable(name) + "' not found");
    return *t;
  }

  /// Float32 view of a DT_FLOAT tensor: zero-copy from the mapping when 4-byte aligned, else
  /// copied once and cached inside the object. Throws naming the checkpoint and tensor when the
  /// shape differs from `expected_shape` or the dtype is not DT_FLOAT.
  std::span<const float> f32(std::string_view name, std::span<const std::int64_t> expected_shape) const {
    const tf_tensor_info& t = info(name);
    const auto where = prefix_.string() + ": tensor '" + detail::printable(t.name) + "'";
    if (t.dtype != tf_dtype::dt_float)
      throw error(where + " has dtype " + tf_dtype_name(t.dtype) + ", only DT_FLOAT is supported");
    if (!std::ranges::equal(t.shape, expected_shape))
      throw error(where + " has shape " + detail::shape_string(t.shape) + " but " +
                  detail::shape_string(expected_shape) + " was expected");
    const std::byte* src = shards_[t.shard].data() + t.offset;
    const auto n = std::size_t(t.size / 4);
    if (n == 0) return {};
    if (std::endian::native == std::endian::little && reinterpret_cast<std::uintptr_t>(src) % alignof(float) == 0)
      return {reinterpret_cast<const float*>(src), n};

    std::lock_guard lock(cache_->mutex);
    auto it = cache_->copies.find(t.name);
    if (it == cache_->copies.end()) {
      std::vector<float> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = std::bit_cast<float>(detail::load_le<std::uint32_t>(src + 4 * i));
      it = cache_->copies.emplace(t.name, std::move(v)).first;
    }
    return it->second;  // map nodes never move, and a cached vector is never modified
  }
  std::span<const float> f32(std::string_view name, std::initializer_list<std::int64_t> expected_shape) const {
    return f32(name, std::span<const std::int64_t>(expected_shape.begin(), expected_shape.size()));
  }

 private:
  struct f32_cache {
    std::mutex mutex;
    std::map<std::string, std::vector<float>, std::less<>> copies;
  };

  void read_index(std::string_view file, const std::string& path) {
    bool has_header = false;
    detail::for_each_table_entry(file, path, [&](std::string_view key, std::string_view value) {
      if (key.empty()) {
        num_shards_ = detail::parse_bundle_header(value, path + ": bundle header");
        has_header = true;
        return;
      }
      const std::string where = path + ": tensor '" + detail::printable(key) + "'";
      tf_tensor_info t = detail::parse_bundle_entry(value, where);
      t.name = key;
      check_entry(t, where);
      tensors_.push_back(std::move(t));
    });
    // The header key "" sorts first, so every entry above was checked against num_shards below.
    if (!has_header) throw error(path + ": no bundle header (the entry with the empty key)");
    for (const auto& t : tensors_)
      if (t.shard >= num_shards_)
        throw error(path + ": tensor '" + detail::printable(t.name) + "': shard_id " + std::to_string(t.shard) +
                    " is not below num_shards " + std::to_string(num_shards_));
  }

  /// What an entry must satisfy on its own: a supported dtype, a shape whose byte count fits, and
  /// for raw arrays a size equal to numel times the element size.
  static void check_entry(const tf_tensor_info& t, const std::string& where) {
    const std::size_t element = detail::tf_dtype_size(t.dtype);
    if (element == 0 && t.dtype != tf_dtype::dt_string)
      throw error(where + ": dtype " + tf_dtype_name(t.dtype) + " is not supported");
    std::uint64_t numel = 1;
    for (auto d : t.shape)
      if (__builtin_mul_overflow(numel, std::uint64_t(d), &numel) || numel > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
        throw error(where + ": shape " + detail::shape_string(t.shape) + " has too many elements");
    if (element == 0) return;  // DT_STRING: its layout is checked against the data in verify_data()
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, element, &bytes))
      throw error(where + ": shape " + detail::shape_string(t.shape) + " has too many bytes");
    if (bytes != t.size)
      throw error(where + ": shape " + detail::shape_string(t.shape) + " of " + tf_dtype_name(t.dtype) + " needs " +
                  std::to_string(bytes) + " bytes but the entry's size is " + std::to_string(t.size));
  }

  void verify_data(const tf_tensor_info& t) const {
    const detail::mapped_file& shard = shards_[t.shard];
    const auto where = detail::tf_shard_path(prefix_, t.shard, num_shards_).string() + ": tensor '" +
                       detail::printable(t.name) + "'";
    if (t.offset > shard.size() || t.size > shard.size() - t.offset)
      throw error(where + ": bytes [" + std::to_string(t.offset) + ", +" + std::to_string(t.size) +
                  ") lie outside the data file (" + std::to_string(shard.size()) + " bytes); truncated?");
    const std::string_view data(reinterpret_cast<const char*>(shard.data()) + t.offset, std::size_t(t.size));
    const std::uint32_t crc = t.dtype == tf_dtype::dt_string
                                  ? detail::tf_string_tensor_crc(data, std::uint64_t(t.numel()), where)
                                  : detail::crc32c_extend(0, data.data(), data.size());
    if (detail::tf_verify_checksums && detail::crc32c_mask(crc) != t.masked_crc32c)
      throw error(where + ": crc32c mismatch (corrupt data file)");
  }

  std::filesystem::path prefix_;
  std::uint32_t num_shards_ = 0;
  std::vector<detail::mapped_file> shards_;
  std::vector<tf_tensor_info> tensors_;  // sorted by name, as in the index
  std::unique_ptr<f32_cache> cache_;
};

}  // namespace bitfit
