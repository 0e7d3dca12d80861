// The classifier uses the shared SHA-256 (services/common/crypto) for model
// checksums and training-data provenance; these names keep its code short.
#ifndef TIERMESH_SERVICES_CLASSIFIER_SHA256_H_
#define TIERMESH_SERVICES_CLASSIFIER_SHA256_H_

#include "services/common/crypto/sha256.h"

namespace tiermesh::classifier {
using ::tiermesh::crypto::Sha256;
using ::tiermesh::crypto::Sha256Hex;
}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_SHA256_H_
