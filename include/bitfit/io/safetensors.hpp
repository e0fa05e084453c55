#pragma once
/// @file safetensors.hpp
/// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
/// an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
/// range, then the raw little-endian data. Files are memory-mapped and validated completely on open,
/// so that no later access can read outside the file. Also SHA-256, which ties a patch to the exact
/// backbone weights it was trained on.

#include <bitfit/core/atomic_file.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/core/json.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bitfit {

/// Element types of the safetensors format that bitfit understands.
enum class dtype { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

/// The safetensors spelling of a dtype ("F32", "BF16", "BOOL", ...).
inline std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::f64: return "F64";
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
    case dtype::i64: return "I64";
    case dtype::i32: return "I32";
    case dtype::i16: return "I16";
    case dtype::i8: return "I8";
    case dtype::u8: return "U8";
    case dtype::boolean: return "BOOL";
  }
  return "?";
}

/// One tensor as described by the header.
struct tensor_info {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0, end = 0;  ///< byte offsets relative to the data section

  /// Number of elements (1 for a scalar of shape []). safetensors_file guarantees that every
  /// partial product fits in int64; for a hand-made shape where one does not, or with a negative
  /// dimension, throws rather than overflow.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape)
      if (d < 0 || __builtin_mul_overflow(n, d, &n))
        throw error("tensor '" + detail::capped(name) + "': shape has a negative dimension or too many elements");
    return n;
  }
};

namespace detail {

inline constexpr std::size_t safetensors_max_header = 100'000'000;

inline std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f64: case dtype::i64: return 8;
    case dtype::f32: case dtype::i32: return 4;
    case dtype::f16: case dtype::bf16: case dtype::i16: return 2;
    case dtype::i8: case dtype::u8: case dtype::boolean: return 1;
  }
  return 0;
}

inline bool parse_dtype(std::string_view s, dtype& out) {
  for (auto t : {dtype::f64, dtype::f32, dtype::f16, dtype::bf16, dtype::i64, dtype::i32, dtype::i16,
                 dtype::i8, dtype::u8, dtype::boolean})
    if (dtype_name(t) == s) {
      out = t;
      return true;
    }
  return false;
}

inline std::string shape_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Little-endian loads and stores written byte by byte, so they are correct on any host and at
/// any alignment (compilers turn them into single moves on x86/ARM).
template <class UInt>
UInt load_le(const std::byte* p) {
  UInt v = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i) v |= UInt(std::to_integer<unsigned>(p[i])) << (8 * i);
  return v;
}
template <class UInt>
void store_le(UInt v, char* p) {
  for (std::size_t i = 0; i < sizeof(UInt); ++i) p[i] = char((v >> (8 * i)) & 0xFF);
}

/// IEEE binary16 to binary32, exact (every half is representable as a float), incl. subnormals,
/// infinities and NaN (payload kept).
inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: value = mant * 2^-24. Normalise it, since it is a normal float.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | std::uint32_t(127 - 15 - e) << 23 | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// bfloat16 is the top half of a binary32, so the conversion is exact.
inline float bf16_to_f32(std::uint16_t h) { return std::bit_cast<float>(std::uint32_t(h) << 16); }

/// binary64 to binary32 with round-to-nearest and overflow to infinity. A plain cast of a finite
/// double beyond the float range is undefined behaviour, so those are handled explicitly.
inline float f64_to_f32(double d) {
  constexpr double fmax = std::numeric_limits<float>::max();
  constexpr double half_ulp_above = fmax + 0x1p103;  // halfway between FLT_MAX and 2^128: ties to even = inf
  if (std::isnan(d)) return std::numeric_limits<float>::quiet_NaN();
  const double a = std::fabs(d);
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (a >= half_ulp_above) return d > 0 ? inf : -inf;
  if (a > fmax) return d > 0 ? float(fmax) : -float(fmax);
  return static_cast<float>(d);
}

/// A read-only private mapping of a whole file; empty files are not mapped.
class mapped_file {
 public:
  explicit mapped_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw error(path.string() + ": cannot open (" + std::strerror(errno) + ")");
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw error(path.string() + ": cannot stat (" + std::strerror(err) + ")");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw error(path.string() + ": not a regular file");
    }
    size_ = std::size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw error(path.string() + ": cannot map into memory (" + std::strerror(err) + ")");
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping keeps the file alive
  }
  mapped_file(mapped_file&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      unmap();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void unmap() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
  }
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Streaming SHA-256 (FIPS 180-4).
class sha256 {
 public:
  sha256& update(const void* data, std::size_t n) {
    auto p = static_cast<const std::uint8_t*>(data);
    total_ += n;
    if (fill_ > 0) {
      const std::size_t take = std::min(n, 64 - fill_);
      std::memcpy(buf_.data() + fill_, p, take);
      fill_ += take, p += take, n -= take;
      if (fill_ < 64) return *this;
      block(buf_.data());
      fill_ = 0;
    }
    for (; n >= 64; p += 64, n -= 64) block(p);
    std::memcpy(buf_.data(), p, n);
    fill_ = n;
    return *this;
  }
  sha256& update(std::string_view s) { return update(s.data(), s.size()); }

  /// The digest as 64 lowercase hex digits. Ends the computation.
  std::string hex() {
    const std::uint64_t bits = total_ * 8;
    const std::uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    std::uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = std::uint8_t(bits >> (56 - 8 * i));
    update(len, 8);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto w : h_)
      for (int s = 28; s >= 0; s -= 4) out += digits[(w >> s) & 0xF];
    return out;
  }

 private:
  void block(const std::uint8_t* p) {
    static constexpr std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = std::uint32_t(p[4 * i]) << 24 | std::uint32_t(p[4 * i + 1]) << 16 |
             std::uint32_t(p[4 * i + 2]) << 8 | std::uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const auto s0 = std::rotr(w[i - 15], 7) ^ std::rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const auto s1 = std::rotr(w[i - 2], 17) ^ std::rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    auto [a, b, c, d, e, f, g, h] = h_;
    for (int i = 0; i < 64; ++i) {
      const auto t1 = h + (std::rotr(e, 6) ^ std::rotr(e, 11) ^ std::rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const auto t2 = (std::rotr(a, 2) ^ std::rotr(a, 13) ^ std::rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    const std::uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i) h_[i] += add[i];
  }

  std::array<std::uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<std::uint8_t, 64> buf_{};
  std::size_t fill_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace detail

/// A read-only, memory-mapped safetensors file; validated completely on open.
///
/// Tensor names are looked up with or without a "bert." prefix, so BertModel checkpoints (no
/// prefix) and BertFor* checkpoints ("bert.encoder...") both serve the same names. All const
/// members may be called from several threads at once. As with any mapping, the file must not be
/// truncated in place while open; write_safetensors() replaces files by rename(), which is safe.
class safetensors_file {
 public:
  /// Maps `path` and validates its header and every tensor's byte range; throws bitfit::error
  /// naming the file (and the tensor, if any) and the problem.
  explicit safetensors_file(const std::filesystem::path& path)
      : path_(path), map_(path), cache_(std::make_unique<f32_cache>()) {
    validate();
  }
  safetensors_file(safetensors_file&&) noexcept = default;
  safetensors_file& operator=(safetensors_file&&) noexcept = default;
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;
  ~safetensors_file() = default;

  const std::filesystem::path& path() const { return path_; }

  /// Tensor names exactly as stored, in the order of their data in the file.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  /// Whether a tensor exists, under `name` itself or with a "bert." prefix added or removed.
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  /// The header entry of a tensor (same lookup as contains()); throws when absent.
  const tensor_info& info(std::string_view name) const {
    const tensor_info* t = find(name);
    if (!t) throw error(path_.string() + ": tensor '" + std::string(name) + "' not found");
    return *t;
  }

  /// Float32 view of a tensor: zero-copy for aligned F32 data; F16/BF16/F64 (and misaligned F32)
  /// converted once and cached inside the object. Throws naming file, tensor, expected and actual
  /// shape when the shape differs from `expected_shape`, or when the dtype is not floating-point.
  std::span<const float> f32(std::string_view name, std::span<const std::int64_t> expected_shape) const {
    const tensor_info& t = info(name);
    if (!std::ranges::equal(t.shape, expected_shape))
      throw error(path_.string() + ": tensor '" + t.name + "' has shape " +
                  detail::capped(detail::shape_string(t.shape)) + " but " + detail::shape_string(expected_shape) +
                  " was expected");
    if (t.type != dtype::f32 && t.type != dtype::f16 && t.type != dtype::bf16 && t.type != dtype::f64)
      throw error(path_.string() + ": tensor '" + t.name + "' has dtype " + std::string(dtype_name(t.type)) +
                  ", which is not a floating-point type");
    const std::byte* src = data_begin() + t.begin;
    const auto n = std::size_t(t.numel());
    if (t.type == dtype::f32 && std::endian::native == std::endian::little &&
        reinterpret_cast<std::uintptr_t>(src) % alignof(float) == 0)
      return {reinterpret_cast<const float*>(src), n};

    std::lock_guard lock(cache_->mutex);
    auto it = cache_->converted.find(t.name);
    if (it == cache_->converted.end()) {
      std::vector<float> v(n);
      for (std::size_t i = 0; i < n; ++i) {
        switch (t.type) {
          case dtype::f32: v[i] = std::bit_cast<float>(detail::load_le<std::uint32_t>(src + 4 * i)); break;
          case dtype::f16: v[i] = detail::f16_to_f32(detail::load_le<std::uint16_t>(src + 2 * i)); break;
          case dtype::bf16: v[i] = detail::bf16_to_f32(detail::load_le<std::uint16_t>(src + 2 * i)); break;
          default: v[i] = detail::f64_to_f32(std::bit_cast<double>(detail::load_le<std::uint64_t>(src + 8 * i)));
        }
      }
      it = cache_->converted.emplace(t.name, std::move(v)).first;
    }
    return it->second;  // map nodes never move, and a cached vector is never modified
  }
  std::span<const float> f32(std::string_view name, std::initializer_list<std::int64_t> expected_shape) const {
    return f32(name, std::span<const std::int64_t>(expected_shape.begin(), expected_shape.size()));
  }

  /// The "__metadata__" object of the header (an empty object when absent); every value is a string.
  const nlohmann::json& metadata() const { return metadata_; }

  /// The raw little-endian bytes of one tensor, straight from the mapping.
  std::span<const std::byte> bytes(std::string_view name) const {
    const tensor_info& t = info(name);
    return {data_begin() + t.begin, t.end - t.begin};
  }

 private:
  struct f32_cache {
    std::mutex mutex;
    std::map<std::string, std::vector<float>, std::less<>> converted;
  };

  const std::byte* data_begin() const { return map_.data() + 8 + header_size_; }

  const tensor_info* find(std::string_view name) const {
    auto lookup = [&](std::string_view n) -> const tensor_info* {
      auto it = index_.find(n);
      return it == index_.end() ? nullptr : &tensors_[it->second];
    };
    constexpr std::string_view prefix = "bert.";
    if (auto* t = lookup(name)) return t;
    if (name.starts_with(prefix)) return lookup(name.substr(prefix.size()));
    return lookup(std::string(prefix) + std::string(name));
  }

  [[noreturn]] void fail(const std::string& problem) const { throw error(path_.string() + ": " + problem); }
  [[noreturn]] void fail(const std::string& tensor, const std::string& problem) const {
    throw error(path_.string() + ": tensor '" + detail::capped(tensor) + "': " + problem);
  }

  void validate() {
    const std::size_t size = map_.size();
    if (size < 8)
      fail("file is " + std::to_string(size) + " bytes, too short for a safetensors header length (8 bytes)");
    const auto n = detail::load_le<std::uint64_t>(map_.data());
    if (n > size - 8)
      fail("header length " + std::to_string(n) + " is larger than the rest of the file (" +
           std::to_string(size - 8) + " bytes); truncated or not a safetensors file");
    if (n > detail::safetensors_max_header)
      fail("header length " + std::to_string(n) + " exceeds the limit of " +
           std::to_string(detail::safetensors_max_header) + " bytes");
    header_size_ = std::size_t(n);
    const std::size_t data_size = size - 8 - header_size_;

    // Duplicate top-level keys would silently shadow each other in the parsed object; catch them
    // while parsing. The nesting bound (a real header nests 3 deep) keeps a hostile one from
    // overflowing the stack in anything that recurses over the parsed value.
    std::set<std::string, std::less<>> seen;
    std::string duplicate;
    const auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string() &&
          !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
      return true;
    };
    const auto* text = reinterpret_cast<const char*>(map_.data() + 8);
    const nlohmann::json header = parse_json_bounded({text, header_size_}, path_.string() + ": header",
                                                     json_max_depth, on_event);
    if (!header.is_object()) fail(std::string("header is a JSON ") + header.type_name() + ", not an object");
    if (!duplicate.empty()) fail("key '" + detail::capped(duplicate) + "' appears more than once in the header");

    metadata_ = nlohmann::json::object();
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) fail("__metadata__ is a JSON " + std::string(entry.type_name()) + ", not an object");
        for (const auto& [key, value] : entry.items())
          if (!value.is_string()) fail("__metadata__ value of '" + detail::capped(key) + "' is not a string");
        metadata_ = entry;
        continue;
      }
      tensors_.push_back(parse_entry(name, entry, data_size));
    }

    std::ranges::sort(tensors_, [](const tensor_info& a, const tensor_info& b) {
      return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    for (std::size_t i = 1; i < tensors_.size(); ++i)
      if (tensors_[i].begin < tensors_[i - 1].end)
        fail("tensors '" + detail::capped(tensors_[i - 1].name) + "' and '" + detail::capped(tensors_[i].name) +
             "' overlap (bytes [" + std::to_string(tensors_[i - 1].begin) + ", " +
             std::to_string(tensors_[i - 1].end) + ") and [" + std::to_string(tensors_[i].begin) + ", " +
             std::to_string(tensors_[i].end) + "))");
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  tensor_info parse_entry(const std::string& name, const nlohmann::json& entry, std::size_t data_size) const {
    if (!entry.is_object()) fail(name, "entry is a JSON " + std::string(entry.type_name()) + ", not an object");
    tensor_info t;
    t.name = name;

    const auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail(name, "missing or non-string dtype");
    if (!detail::parse_dtype(dt->get<std::string>(), t.type))
      fail(name, "unknown dtype '" + detail::capped(dt->get<std::string>()) + "'");

    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) fail(name, "missing shape (an array of non-negative integers)");
    // The product of the non-zero dimensions must fit in int64, whatever their order: [2^62, 2, 0]
    // has 0 elements, but tensor_info::numel() multiplying left to right would overflow on it.
    std::uint64_t nonzero_product = 1;
    bool overflow = false, has_zero = false;
    for (const auto& d : *shape) {
      // nlohmann stores non-negative integers as unsigned, negative ones as signed, others as float.
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
        fail(name, "shape " + json_excerpt(*shape) + " must be an array of non-negative integers");
      const auto v = d.get<std::uint64_t>();
      t.shape.push_back(std::int64_t(v));
      if (v == 0) has_zero = true;
      else overflow = overflow || __builtin_mul_overflow(nonzero_product, v, &nonzero_product);
    }
    const std::string shape_str = detail::capped(detail::shape_string(t.shape));
    if (overflow || nonzero_product > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
      fail(name, "shape " + shape_str + " has too many elements (overflow)");
    const std::uint64_t numel = has_zero ? 0 : nonzero_product;
    std::uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, std::uint64_t(detail::dtype_size(t.type)), &nbytes))
      fail(name, "shape " + shape_str + " of " + std::string(dtype_name(t.type)) + " has too many bytes (overflow)");

    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned())
      fail(name, "data_offsets must be [begin, end] with non-negative integers");
    const auto begin = (*offsets)[0].get<std::uint64_t>(), end = (*offsets)[1].get<std::uint64_t>();
    if (begin > end)
      fail(name, "data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
    if (end - begin != nbytes)
      fail(name, "shape " + shape_str + " of " + std::string(dtype_name(t.type)) + " needs " + std::to_string(nbytes) +
                     " bytes but data_offsets span " + std::to_string(end - begin));
    if (end > data_size)
      fail(name, "data_offsets end " + std::to_string(end) + " is past the end of the data section (" +
                     std::to_string(data_size) + " bytes); truncated file?");
    t.begin = std::size_t(begin);
    t.end = std::size_t(end);
    return t;
  }

  std::filesystem::path path_;
  detail::mapped_file map_;
  std::size_t header_size_ = 0;
  std::vector<tensor_info> tensors_;  // sorted by data offset
  std::map<std::string, std::size_t, std::less<>> index_;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::unique_ptr<f32_cache> cache_;
};

/// One tensor to write: float32 data in row-major order.
struct tensor_to_write {
  std::string name;
  std::vector<std::int64_t> shape;
  std::span<const float> data;
};

namespace detail {

/// Writes all of `bytes` to `fd`, retrying short writes; false (errno set) on failure.
inline bool write_all(int fd, const char* bytes, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, bytes, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += w;
    n -= std::size_t(w);
  }
  return true;
}

}  // namespace detail

/// Writes `tensors` as F32 with `metadata` as "__metadata__". Atomic: written to
/// "<path>.tmp.<pid>", flushed to disk, then renamed over `path`, so readers (including open
/// mappings of the old file) never see a partial file. Throws bitfit::error naming the path.
inline void write_safetensors(const std::filesystem::path& path, std::span<const tensor_to_write> tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    const auto where = path.string() + ": tensor '" + t.name + "': ";
    check(!t.name.empty() && t.name != "__metadata__", where + "invalid tensor name");
    check(!header.contains(t.name), where + "name given twice");
    std::uint64_t numel = 1;
    for (auto d : t.shape) {
      check(d >= 0, where + "negative dimension in shape " + detail::shape_string(t.shape));
      check(!__builtin_mul_overflow(numel, std::uint64_t(d), &numel), where + "shape too large");
    }
    check(numel == t.data.size(), where + "shape " + detail::shape_string(t.shape) + " has " + std::to_string(numel) +
                                      " elements but the data has " + std::to_string(t.data.size()));
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + 4 * t.data.size()}}};
    offset += 4 * t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned, as the spec advises

  const auto tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw error(path.string() + ": cannot write (" + std::strerror(errno) + ")");
  auto give_up = [&](int err) {
    ::close(fd);
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw error(path.string() + ": cannot write (" + std::strerror(err) + ")");
  };
  char len[8];
  detail::store_le(std::uint64_t(text.size()), len);
  if (!detail::write_all(fd, len, 8) || !detail::write_all(fd, text.data(), text.size())) give_up(errno);
  std::vector<char> chunk;
  for (const auto& t : tensors) {
    for (std::size_t i = 0; i < t.data.size(); i += 65536) {
      const std::size_t m = std::min<std::size_t>(65536, t.data.size() - i);
      chunk.resize(4 * m);
      for (std::size_t j = 0; j < m; ++j) detail::store_le(std::bit_cast<std::uint32_t>(t.data[i + j]), chunk.data() + 4 * j);
      if (!detail::write_all(fd, chunk.data(), chunk.size())) give_up(errno);
    }
  }
  if (::fsync(fd) != 0) give_up(errno);
  if (::close(fd) != 0) {
    const int err = errno;
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw error(path.string() + ": cannot write (" + std::strerror(err) + ")");
  }
  publish_file(tmp, path);
}

/// SHA-256 of a file's contents as 64 lowercase hex digits.
inline std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(path.string() + ": cannot open for hashing");
  detail::sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    h.update(buf.data(), std::size_t(in.gcount()));
  }
  if (in.bad()) throw error(path.string() + ": read error while hashing");
  return h.hex();
}

}  // namespace bitfit
