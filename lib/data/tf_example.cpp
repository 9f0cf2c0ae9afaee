#include "data/tf_example.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/error.h"
#include "io/image_file.h"
#include "io/protobuf_wire.h"

namespace mrcnn::data {
namespace {

// Field numbers of tensorflow/core/example/{example,feature}.proto.
constexpr uint32_t kExampleFeatures = 1, kFeaturesMap = 1, kMapKey = 1, kMapValue = 2;
constexpr uint32_t kBytesList = 1, kFloatList = 2, kInt64List = 3, kListValue = 1;

void check(const proto::Reader& r, const std::string& where) {
  if (!r.ok()) throw Error(where + ": not a tf.train.Example (" + r.error() + ")");
}

TfFeature parse_feature(std::string_view data, const std::string& where) {
  TfFeature feature;
  proto::Reader r(data);
  while (r.next()) {
    std::string_view list;
    if (r.type() != proto::LengthDelimited || !r.read_bytes(list)) {
      r.skip();
      continue;
    }
    proto::Reader values(list);
    if (r.field() == kBytesList) {
      feature.kind = TfFeature::Kind::Bytes;
      while (values.next()) {
        std::string_view v;
        if (values.field() == kListValue && values.read_bytes(v)) feature.bytes.emplace_back(v);
        else values.skip();
      }
    } else if (r.field() == kFloatList) {
      feature.kind = TfFeature::Kind::Float;
      while (values.next()) {
        if (values.field() != kListValue) {
          values.skip();
        } else if (values.type() == proto::Fixed32) {  // unpacked
          uint32_t bits = 0;
          if (values.read_fixed32(bits)) feature.floats.push_back(0), std::memcpy(&feature.floats.back(), &bits, 4);
        } else {  // packed
          std::string_view packed;
          if (!values.read_bytes(packed)) break;
          if (packed.size() % 4) throw Error(where + ": float list of " + std::to_string(packed.size()) + " bytes");
          const size_t n = packed.size() / 4;
          const size_t old = feature.floats.size();
          feature.floats.resize(old + n);
          if (n > 0) std::memcpy(feature.floats.data() + old, packed.data(), packed.size());  // data() may be null
        }
      }
    } else if (r.field() == kInt64List) {
      feature.kind = TfFeature::Kind::Int64;
      while (values.next()) {
        if (values.field() != kListValue) {
          values.skip();
        } else if (values.type() == proto::Varint) {
          uint64_t v;
          if (values.read_varint(v)) feature.ints.push_back(static_cast<int64_t>(v));
        } else {
          std::string_view packed;
          if (!values.read_bytes(packed)) break;
          proto::Reader p(packed);
          uint64_t v;
          while (!p.at_end() && p.varint(v)) feature.ints.push_back(static_cast<int64_t>(v));
          check(p, where);
        }
      }
    }
    check(values, where);
  }
  check(r, where);
  return feature;
}

const TfFeature* find(const TfExample& example, const std::string& key) {
  const auto it = example.find(key);
  return it == example.end() ? nullptr : &it->second;
}

int64_t single_int(const TfExample& example, const std::string& key, const std::string& where) {
  const TfFeature* f = find(example, key);
  if (!f || f->ints.size() != 1) throw Error(where + ": expected one int64 in '" + key + "'");
  return f->ints[0];
}

// Pixels in one height x width mask; throws Error when the product overflows or exceeds the pixel
// limit of images (a record's sizes are not to be trusted: the masks are built from them).
size_t mask_plane(int64_t height, int64_t width, int64_t max_pixels, const std::string& where) {
  int64_t pixels = 0;
  if (__builtin_mul_overflow(height, width, &pixels) || pixels > max_pixels)
    throw Error(where + ": image/height x image/width (" + std::to_string(height) + " x " + std::to_string(width) +
                ") is more than the limit of " + std::to_string(max_pixels) + " pixels");
  return static_cast<size_t>(pixels);
}

// An instance mask PNG as a height x width CV_8U of 0/1; its size is checked from the PNG header
// before it is decoded.
cv::Mat png_mask(const std::string& png, int64_t height, int64_t width, const std::string& where) {
  const auto dims = image_header_dimensions(png);
  const Error wrong_size(where + " is not a " + std::to_string(width) + "x" + std::to_string(height) + " PNG");
  if (!dims || dims->width != width || dims->height != height || png.size() > size_t(INT_MAX)) throw wrong_size;
  cv::Mat m;
  try {
    m = cv::imdecode(cv::Mat(1, static_cast<int>(png.size()), CV_8UC1, const_cast<char*>(png.data())),
                     cv::IMREAD_GRAYSCALE);
  } catch (const cv::Exception&) {  // truncated or corrupt data
    throw wrong_size;
  }
  if (m.empty() || m.rows != height || m.cols != width) throw wrong_size;
  cv::Mat binary = m > 0;
  return binary / 255;
}

std::string single_bytes(const TfExample& example, const std::string& key) {
  const TfFeature* f = find(example, key);
  return f && !f->bytes.empty() ? f->bytes[0] : "";
}

}  // namespace

TfExample parse_tf_example(std::string_view record, const std::string& where) {
  TfExample example;
  proto::Reader r(record);
  while (r.next()) {
    std::string_view features;
    if (r.field() != kExampleFeatures || !r.read_bytes(features)) {
      r.skip();
      continue;
    }
    proto::Reader f(features);
    while (f.next()) {
      std::string_view entry;
      if (f.field() != kFeaturesMap || !f.read_bytes(entry)) {
        f.skip();
        continue;
      }
      proto::Reader e(entry);
      std::string key;
      TfFeature value;
      while (e.next()) {
        std::string_view v;
        if (e.field() == kMapKey && e.read_bytes(v)) key = std::string(v);
        else if (e.field() == kMapValue && e.read_bytes(v)) value = parse_feature(v, where + " feature '" + key + "'");
        else e.skip();
      }
      check(e, where);
      example[key] = std::move(value);
    }
    check(f, where);
  }
  check(r, where);
  return example;
}

Sample sample_from_tf_example(const TfExample& example, const std::string& where, int64_t max_pixels) {
  Sample s;
  s.height = single_int(example, "image/height", where);
  s.width = single_int(example, "image/width", where);
  if (s.height <= 0 || s.width <= 0) throw Error(where + ": image/height and image/width must be positive");
  const std::string source_id = single_bytes(example, "image/source_id");
  s.image_path = single_bytes(example, "image/filename");
  if (!source_id.empty() && std::all_of(source_id.begin(), source_id.end(), ::isdigit) && source_id.size() < 18)
    s.image_id = std::stoll(source_id);
  const std::vector<std::string> box_keys = {"image/object/bbox/xmin", "image/object/bbox/ymin",
                                             "image/object/bbox/xmax", "image/object/bbox/ymax"};
  std::vector<const std::vector<float>*> coords;
  for (const auto& key : box_keys) {
    const TfFeature* f = find(example, key);
    static const std::vector<float> none;
    coords.push_back(f ? &f->floats : &none);
  }
  const TfFeature* labels = find(example, "image/object/class/label");
  const size_t n = coords[0]->size();
  for (const auto* c : coords)
    if (c->size() != n) throw Error(where + ": the image/object/bbox/* lists differ in length");
  if ((labels ? labels->ints.size() : 0) != n)
    throw Error(where + ": image/object/class/label has " + std::to_string(labels ? labels->ints.size() : 0) +
                " entries for " + std::to_string(n) + " boxes");
  const TfFeature* masks = find(example, "image/object/mask");
  const bool png_masks = masks && masks->kind == TfFeature::Kind::Bytes && !masks->bytes.empty();
  const bool float_masks = masks && masks->kind == TfFeature::Kind::Float && !masks->floats.empty();
  if (png_masks && masks->bytes.size() != n)
    throw Error(where + ": image/object/mask has " + std::to_string(masks->bytes.size()) + " PNGs for " +
                std::to_string(n) + " boxes");
  const size_t plane = mask_plane(s.height, s.width, max_pixels, where);
  size_t mask_floats = 0;
  if (float_masks && (__builtin_mul_overflow(n, plane, &mask_floats) || masks->floats.size() != mask_floats))
    throw Error(where + ": image/object/mask has " + std::to_string(masks->floats.size()) + " floats, expected " +
                std::to_string(n) + " x " + std::to_string(s.height) + " x " + std::to_string(s.width));
  for (size_t k = 0; k < n; ++k) {
    s.boxes.push_back({(*coords[0])[k] * s.width, (*coords[1])[k] * s.height, (*coords[2])[k] * s.width,
                       (*coords[3])[k] * s.height});
    s.labels.push_back(labels->ints[k]);
    if (png_masks) {
      const std::string which = where + ": instance mask " + std::to_string(k);
      const cv::Mat binary = png_mask(masks->bytes[k], s.height, s.width, which);
      s.mask_rles.push_back(eval::encode_rle(binary.data, s.height, s.width));
    } else if (float_masks) {
      std::vector<uint8_t> bits(plane);
      const float* src = masks->floats.data() + k * plane;
      for (size_t i = 0; i < plane; ++i) bits[i] = src[i] > 0.5f;
      s.mask_rles.push_back(eval::encode_rle(bits.data(), s.height, s.width));
    }
  }
  return s;
}

cv::Mat tf_example_image(const TfExample& example, const std::string& where, int64_t max_pixels,
                         const BandLayout& layout) {
  const TfFeature* f = find(example, "image/encoded");
  if (!f || f->bytes.empty()) throw Error(where + ": no image/encoded");
  return decode_image_bands(f->bytes[0], where + ": image/encoded", layout, max_pixels);
}

}  // namespace mrcnn::data
