// Personal-data detector: tells WHICH kinds of personal data a text contains,
// never the data itself (no offsets, no matches leave this file), so callers
// cannot log it by accident.
//
//   PiiKinds kinds = DetectPii("mail me at ann@example.org");
//   kinds.email == true;  PiiKindNames(kinds) == {"email"}
//
// Kinds and their checks (chosen to keep false positives low on prompts full
// of numbers, such as maths problems):
//   email        local@domain.tld with a letters-only TLD of 2+ characters
//   phone        +<country> and 8-15 digits, or (ddd) ddd-dddd / ddd-ddd-dddd /
//                ddd.ddd.dddd shapes, or 10-15 digits right after a word like
//                "phone", "call", "tel"
//   card         13-19 digits (single spaces/dashes between groups allowed)
//                with a known issuer prefix and a valid Luhn checksum
//   iban         country code + 2 check digits + 11-30 letters/digits (spaces
//                every 4 allowed), the country's length, and mod-97 == 1
//   national_id  US SSN ddd-dd-dddd (or 9 digits after "ssn"/"social
//                security") outside the never-issued ranges (area 000, 666,
//                900-999; group 00; serial 0000)
#ifndef TIERMESH_SERVICES_CLASSIFIER_PII_H_
#define TIERMESH_SERVICES_CLASSIFIER_PII_H_

#include <string>
#include <string_view>
#include <vector>

namespace tiermesh::classifier {

struct PiiKinds {
  bool email = false;
  bool phone = false;
  bool card = false;
  bool iban = false;
  bool national_id = false;

  bool any() const { return email || phone || card || iban || national_id; }
  PiiKinds& operator|=(const PiiKinds& o) {
    email |= o.email;
    phone |= o.phone;
    card |= o.card;
    iban |= o.iban;
    national_id |= o.national_id;
    return *this;
  }
};

// Scans `text` (any bytes; invalid UTF-8 is fine) in linear time.
PiiKinds DetectPii(std::string_view text);

// "email", "phone", "card", "iban", "national_id" for the kinds present, in
// that order.
std::vector<std::string> PiiKindNames(const PiiKinds& kinds);

// Exposed for tests: the Luhn checksum over a string of ASCII digits.
bool LuhnValid(std::string_view digits);
// Exposed for tests: the ISO 13616 check of a compact upper-case IBAN.
bool IbanValid(std::string_view compact);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_PII_H_
