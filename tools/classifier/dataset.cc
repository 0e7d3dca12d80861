#include "tools/classifier/dataset.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/classifier/sha256.h"
#include "tools/classifier/training.h"

namespace tiermesh::classifier {
namespace {

using nlohmann::json;

constexpr std::string_view kClincChat[] = {"greeting",
                                           "goodbye",
                                           "thank_you",
                                           "tell_joke",
                                           "fun_fact",
                                           "meaning_of_life",
                                           "are_you_a_bot",
                                           "what_is_your_name",
                                           "how_old_are_you",
                                           "who_made_you",
                                           "who_do_you_work_for",
                                           "where_are_you_from",
                                           "do_you_have_pets",
                                           "what_can_i_ask_you",
                                           "what_are_your_hobbies",
                                           "definition",
                                           "spelling",
                                           "translate",
                                           "recipe",
                                           "meal_suggestion",
                                           "ingredient_substitution",
                                           "travel_suggestion",
                                           "cook_time",
                                           "food_last",
                                           "ingredients_list",
                                           "nutrition_info",
                                           "calories",
                                           "plug_type",
                                           "jump_start",
                                           "oil_change_how",
                                           "tire_change",
                                           "improve_credit_score",
                                           "international_visa",
                                           "vaccines"};
// Live information, the user's accounts and devices, and actions.
constexpr std::string_view kClincTool[] = {"weather",
                                           "traffic",
                                           "exchange_rate",
                                           "flight_status",
                                           "time",
                                           "date",
                                           "timezone",
                                           "current_location",
                                           "directions",
                                           "distance",
                                           "next_holiday",
                                           "restaurant_reviews",
                                           "how_busy",
                                           "balance",
                                           "transfer",
                                           "pay_bill",
                                           "bill_due",
                                           "bill_balance",
                                           "freeze_account",
                                           "routing",
                                           "pin_change",
                                           "account_blocked",
                                           "interest_rate",
                                           "min_payment",
                                           "order_checks",
                                           "spending_history",
                                           "transactions",
                                           "report_fraud",
                                           "replacement_card_duration",
                                           "expiration_date",
                                           "damaged_card",
                                           "report_lost_card",
                                           "card_declined",
                                           "credit_limit_change",
                                           "apr",
                                           "redeem_rewards",
                                           "credit_limit",
                                           "rewards_balance",
                                           "application_status",
                                           "credit_score",
                                           "new_card",
                                           "international_fees",
                                           "confirm_reservation",
                                           "restaurant_reservation",
                                           "cancel_reservation",
                                           "accept_reservations",
                                           "restaurant_suggestion",
                                           "what_song",
                                           "play_music",
                                           "todo_list_update",
                                           "reminder",
                                           "reminder_update",
                                           "calendar_update",
                                           "order_status",
                                           "update_playlist",
                                           "shopping_list",
                                           "calendar",
                                           "next_song",
                                           "order",
                                           "todo_list",
                                           "shopping_list_update",
                                           "smart_home",
                                           "oil_change_when",
                                           "uber",
                                           "tire_pressure",
                                           "schedule_maintenance",
                                           "gas",
                                           "gas_type",
                                           "mpg",
                                           "last_maintenance",
                                           "travel_notification",
                                           "travel_alert",
                                           "lost_luggage",
                                           "book_flight",
                                           "book_hotel",
                                           "car_rental",
                                           "alarm",
                                           "find_phone",
                                           "share_location",
                                           "timer",
                                           "make_call",
                                           "text",
                                           "pto_request_status",
                                           "insurance_change",
                                           "insurance",
                                           "meeting_schedule",
                                           "payday",
                                           "taxes",
                                           "income",
                                           "rollover_401k",
                                           "pto_balance",
                                           "pto_request",
                                           "w2",
                                           "schedule_meeting",
                                           "direct_deposit",
                                           "pto_used",
                                           "sync_device",
                                           "reset_settings",
                                           "change_volume",
                                           "change_speed",
                                           "whisper_mode",
                                           "change_accent",
                                           "change_language",
                                           "change_ai_name",
                                           "change_user_name",
                                           "user_name"};
constexpr std::string_view kClincMath[] = {"calculator", "measurement_conversion"};

template <size_t N>
bool In(std::string_view value, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), value) != std::end(list);
}

absl::Status FileError(std::string_view file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(file), ": ", what));
}

// Calls `fn(json, line_number)` for every non-empty line.
template <typename Fn>
absl::Status ForEachJsonLine(std::string_view contents, std::string_view file, Fn fn) {
  size_t line_number = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    const std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    json value;
    try {
      value = json::parse(line);
    } catch (const json::exception& e) {
      return FileError(file, absl::StrCat("line ", line_number, ": ", e.what()));
    }
    if (absl::Status s = fn(value, line_number); !s.ok()) {
      return FileError(file, absl::StrCat("line ", line_number, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseWhole(std::string_view contents, std::string_view file) {
  try {
    return json::parse(contents);
  } catch (const json::exception& e) {
    return FileError(file, e.what());
  }
}

LabeledRow TextRow(std::string text, std::string label, std::string source, std::string license,
                   std::string group) {
  LabeledRow row;
  row.request.messages.push_back({Role::kUser, std::move(text), 0});
  row.label = std::move(label);
  row.source = std::move(source);
  row.license = std::move(license);
  row.group = std::move(group);
  return row;
}

std::string GetString(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string NormalizeForDedup(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    const bool keep =
        (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b >= 0x80 || (b >= 'A' && b <= 'Z');
    if (!keep) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back((b >= 'A' && b <= 'Z') ? static_cast<char>(b + 32) : c);
  }
  return out;
}

std::string TextKey(std::string_view text) { return Sha256Hex(text).substr(0, 16); }

absl::StatusOr<std::map<std::string, std::string>> ParseLabelFile(std::string_view contents,
                                                                  std::string_view file_name) {
  std::map<std::string, std::string> labels;
  size_t pos = 0;
  int line_number = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    const size_t tab1 = line.find('\t');
    const size_t tab2 = tab1 == std::string_view::npos ? tab1 : line.find('\t', tab1 + 1);
    if (tab1 == std::string_view::npos) {
      return FileError(file_name, absl::StrCat("line ", line_number, ": want label<TAB>key"));
    }
    const std::string label(line.substr(0, tab1));
    const std::string key(line.substr(
        tab1 + 1, tab2 == std::string_view::npos ? std::string_view::npos : tab2 - tab1 - 1));
    if (label != "skip" && !TaskFromName(label).has_value()) {
      return FileError(file_name,
                       absl::StrCat("line ", line_number, ": unknown label \"", label, "\""));
    }
    if (key.size() != 16) {
      return FileError(file_name,
                       absl::StrCat("line ", line_number, ": key must be 16 hex digits"));
    }
    if (!labels.emplace(key, label).second) {
      return FileError(file_name, absl::StrCat("line ", line_number, ": duplicate key ", key));
    }
  }
  return labels;
}

std::vector<LabeledRow> CapPerGroup(std::vector<LabeledRow> rows, size_t cap, uint64_t seed) {
  std::map<std::string, std::vector<std::pair<double, size_t>>> groups;
  for (size_t i = 0; i < rows.size(); ++i) {
    groups[rows[i].group].push_back({StableFraction(rows[i].request.JoinedText(), seed), i});
  }
  std::vector<size_t> keep;
  for (auto& [group, members] : groups) {
    std::sort(members.begin(), members.end());
    for (size_t k = 0; k < members.size() && k < cap; ++k) keep.push_back(members[k].second);
  }
  std::sort(keep.begin(), keep.end());
  std::vector<LabeledRow> out;
  out.reserve(keep.size());
  for (size_t i : keep) out.push_back(std::move(rows[i]));
  return out;
}

std::string_view ClincIntentLabel(std::string_view intent) {
  if (In(intent, kClincChat)) return "chat";
  if (In(intent, kClincTool)) return "tool";
  if (In(intent, kClincMath)) return "math";
  return "";
}

absl::StatusOr<std::vector<LabeledRow>> ReadClinc(std::string_view contents,
                                                  const ClincOptions& options) {
  absl::StatusOr<json> data = ParseWhole(contents, "data_full.json");
  if (!data.ok()) return data.status();
  std::vector<LabeledRow> chat, tool, math;
  try {
    for (const char* split : {"train", "val", "test"}) {
      for (const json& pair : data->at(split)) {
        const std::string intent = pair.at(1).get<std::string>();
        const std::string_view label = ClincIntentLabel(intent);
        if (label.empty()) continue;
        LabeledRow row = TextRow(pair.at(0).get<std::string>(), std::string(label), "clinc150",
                                 "CC BY 3.0", intent);
        (label == "chat" ? chat : label == "tool" ? tool : math).push_back(std::move(row));
      }
    }
  } catch (const json::exception& e) {
    return FileError("data_full.json", e.what());
  }
  std::vector<LabeledRow> out = CapPerGroup(std::move(chat), options.cap_chat, options.seed);
  for (auto* part : {&tool, &math}) {
    std::vector<LabeledRow> capped = CapPerGroup(
        std::move(*part), part == &tool ? options.cap_tool : options.cap_math, options.seed);
    for (LabeledRow& r : capped) out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<LabeledRow>> ReadGsm8k(std::string_view contents, size_t cap,
                                                  uint64_t seed) {
  std::vector<LabeledRow> rows;
  absl::Status s = ForEachJsonLine(contents, "train.jsonl", [&](const json& v, size_t) {
    const std::string q = GetString(v, "question");
    if (q.empty()) return absl::InvalidArgumentError("missing `question`");
    rows.push_back(TextRow(q, "math", "gsm8k", "MIT", "gsm8k"));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return CapPerGroup(std::move(rows), cap, seed);
}

absl::StatusOr<std::vector<LabeledRow>> ReadMetaTool(
    std::string_view contents, const std::map<std::string, std::string>& negative_labels) {
  absl::StatusOr<json> data = ParseWhole(contents, "Task1.json");
  if (!data.ok()) return data.status();
  std::vector<LabeledRow> rows;
  try {
    for (const json& item : *data) {
      const std::string query = item.at("query").get<std::string>();
      const std::string upstream = item.at("label").get<std::string>();
      std::string label = "tool";
      if (upstream != "positive") {
        auto it = negative_labels.find(TextKey(query));
        label = it == negative_labels.end() ? "chat" : it->second;
      }
      if (label == "skip") continue;
      rows.push_back(TextRow(query, label, "metatool_task1", "MIT",
                             upstream == "positive" ? "positive" : "negative"));
    }
  } catch (const json::exception& e) {
    return FileError("Task1.json", e.what());
  }
  return rows;
}

std::string_view BbhTaskLabel(std::string_view task) {
  static constexpr std::string_view kReasoning[] = {"date_understanding",
                                                    "disambiguation_qa",
                                                    "logical_deduction_three_objects",
                                                    "logical_deduction_five_objects",
                                                    "penguins_in_a_table",
                                                    "reasoning_about_colored_objects",
                                                    "temporal_sequences",
                                                    "tracking_shuffled_objects_three_objects",
                                                    "tracking_shuffled_objects_five_objects",
                                                    "tracking_shuffled_objects_seven_objects",
                                                    "boolean_expressions",
                                                    "dyck_languages",
                                                    "word_sorting",
                                                    "geometric_shapes",
                                                    "sports_understanding",
                                                    "salient_translation_error_detection"};
  static constexpr std::string_view kMath[] = {"multistep_arithmetic_two", "object_counting"};
  static constexpr std::string_view kChat[] = {"movie_recommendation"};
  if (In(task, kReasoning)) return "reasoning";
  if (In(task, kMath)) return "math";
  if (In(task, kChat)) return "chat";
  return "";  // hyperbaton, snarks, ruin_names: ambiguous, not used
}

absl::StatusOr<std::vector<LabeledRow>> ReadBbhTask(std::string_view contents,
                                                    std::string_view task, size_t cap,
                                                    uint64_t seed) {
  const std::string_view label = BbhTaskLabel(task);
  if (label.empty()) return std::vector<LabeledRow>{};
  const std::string file = absl::StrCat(std::string(task), ".json");
  absl::StatusOr<json> data = ParseWhole(contents, file);
  if (!data.ok()) return data.status();
  std::vector<LabeledRow> rows;
  try {
    for (const json& ex : data->at("examples")) {
      rows.push_back(TextRow(ex.at("input").get<std::string>(), std::string(label), "bbh", "MIT",
                             std::string(task)));
    }
  } catch (const json::exception& e) {
    return FileError(file, e.what());
  }
  return CapPerGroup(std::move(rows), cap, seed);
}

std::string_view MmluSubjectLabel(std::string_view subject) {
  // Logic, law, philosophy and economics are reasoning by the dataset's own
  // rules; STEM and humanities subjects follow MT-Bench's mapping (stem,
  // humanities -> reasoning: expert analysis rather than small talk).
  static constexpr std::string_view kReasoning[] = {"formal_logic",
                                                    "jurisprudence",
                                                    "econometrics",
                                                    "international_law",
                                                    "moral_scenarios",
                                                    "security_studies",
                                                    "astronomy",
                                                    "college_biology",
                                                    "college_physics",
                                                    "high_school_chemistry",
                                                    "electrical_engineering",
                                                    "medical_genetics",
                                                    "virology",
                                                    "professional_medicine",
                                                    "clinical_knowledge",
                                                    "high_school_world_history",
                                                    "prehistory",
                                                    "world_religions",
                                                    "sociology",
                                                    "high_school_government_and_politics",
                                                    "high_school_microeconomics",
                                                    "professional_psychology",
                                                    "management"};
  static constexpr std::string_view kMath[] = {"college_mathematics", "high_school_mathematics",
                                               "high_school_statistics", "professional_accounting"};
  if (In(subject, kReasoning)) return "reasoning";
  if (In(subject, kMath)) return "math";
  return "";  // trivia, computing and the rest: ambiguous between classes
}

absl::StatusOr<std::vector<LabeledRow>> ReadMmluTasks(std::string_view contents,
                                                      size_t cap_per_subject, uint64_t seed) {
  std::vector<LabeledRow> rows;
  absl::Status s = ForEachJsonLine(contents, "routing_mmlu.jsonl", [&](const json& v, size_t) {
    const std::string subject = GetString(v, "subset");
    const std::string_view label = MmluSubjectLabel(subject);
    if (label.empty()) return absl::OkStatus();
    rows.push_back(TextRow(GetString(v, "text"), std::string(label), "mmlu", "MIT", subject));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return CapPerGroup(std::move(rows), cap_per_subject, seed);
}

absl::StatusOr<std::vector<LabeledRow>> ReadTaskset(std::string_view contents,
                                                    const std::set<std::string>& sources) {
  std::vector<LabeledRow> rows;
  absl::Status s = ForEachJsonLine(contents, "taskset_train.jsonl", [&](const json& v, size_t) {
    const std::string source = GetString(v, "source");
    if (sources.count(source) == 0) return absl::OkStatus();
    const std::string label = GetString(v, "label");
    if (!TaskFromName(label).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown label \"", label, "\""));
    }
    rows.push_back(
        TextRow(GetString(v, "text"), label, source, GetString(v, "license"), "taskset"));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rows;
}

absl::StatusOr<std::vector<LabeledRow>> ReadLabeledJsonl(std::string_view contents,
                                                         std::string_view file_name) {
  std::vector<LabeledRow> rows;
  absl::Status s = ForEachJsonLine(contents, file_name, [&](const json& v, size_t) {
    absl::StatusOr<OwnedRequest> request = ParseRequest(v);
    if (!request.ok()) return request.status();
    LabeledRow row;
    row.request = *std::move(request);
    row.label = GetString(v, "label");
    row.source = GetString(v, "source");
    row.license = GetString(v, "license");
    row.group = GetString(v, "group");
    if (!TaskFromName(row.label).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown or missing label \"", row.label, "\""));
    }
    if (row.source.empty() || row.license.empty()) {
      return absl::InvalidArgumentError("every row needs `source` and `license`");
    }
    rows.push_back(std::move(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rows;
}

std::string_view MtBenchCategoryLabel(std::string_view category) {
  if (category == "writing" || category == "roleplay") return "chat";
  if (category == "coding") return "code";
  if (category == "math") return "math";
  if (category == "reasoning" || category == "stem" || category == "humanities" ||
      category == "extraction") {
    return "reasoning";
  }
  return "";
}

absl::StatusOr<std::vector<LabeledRow>> ReadMtBench(std::string_view contents) {
  std::vector<LabeledRow> rows;
  absl::Status s = ForEachJsonLine(contents, "question.jsonl", [&](const json& v, size_t) {
    const std::string category = GetString(v, "category");
    const std::string_view label = MtBenchCategoryLabel(category);
    if (label.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown category \"", category, "\""));
    }
    auto turns = v.find("turns");
    if (turns == v.end() || !turns->is_array() || turns->empty() || !(*turns)[0].is_string()) {
      return absl::InvalidArgumentError("missing `turns`");
    }
    rows.push_back(TextRow((*turns)[0].get<std::string>(), std::string(label), "mt_bench",
                           "Apache-2.0", category));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rows;
}

absl::StatusOr<std::vector<LabeledRow>> ReadSelfInstruct(
    std::string_view contents, const std::map<std::string, std::string>& labels) {
  std::vector<LabeledRow> rows;
  absl::Status s =
      ForEachJsonLine(contents, "user_oriented_instructions.jsonl", [&](const json& v, size_t) {
        std::string text = GetString(v, "instruction");
        if (text.empty()) return absl::InvalidArgumentError("missing `instruction`");
        auto instances = v.find("instances");
        if (instances != v.end() && instances->is_array() && !instances->empty()) {
          const std::string input = GetString((*instances)[0], "input");
          if (!input.empty()) text += "\n\n" + input;
        }
        auto it = labels.find(TextKey(text));
        const std::string label = it == labels.end() ? "chat" : it->second;
        if (label == "skip") return absl::OkStatus();
        rows.push_back(
            TextRow(text, label, "self_instruct", "Apache-2.0", GetString(v, "motivation_app")));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return rows;
}

absl::StatusOr<std::vector<LabeledRow>> ReadBfcl(std::string_view contents,
                                                 std::string_view category) {
  std::vector<LabeledRow> rows;
  const std::string file = absl::StrCat("BFCL_v4_", std::string(category), ".json");
  absl::Status s = ForEachJsonLine(contents, file, [&](const json& v, size_t) {
    LabeledRow row;
    row.label = "tool";
    row.source = "bfcl_live";
    row.license = "Apache-2.0";
    row.group = std::string(category);
    try {
      const json& turns = v.at("question");
      if (!turns.is_array() || turns.empty()) return absl::OkStatus();
      for (const json& m : turns.at(0)) {
        const std::string role = GetString(m, "role");
        const Role r = role == "system" ? Role::kSystem : Role::kUser;
        if (role != "user" && role != "system") continue;
        row.request.messages.push_back({r, GetString(m, "content"), 0});
      }
      if (auto fns = v.find("function"); fns != v.end() && fns->is_array()) {
        for (const json& fn : *fns) {
          OwnedRequest::Tool tool;
          tool.name = GetString(fn, "name");
          tool.description = GetString(fn, "description");
          if (auto p = fn.find("parameters"); p != fn.end())
            tool.parameters_json_schema = p->dump();
          row.request.tools.push_back(std::move(tool));
        }
      }
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(e.what());
    }
    bool has_user = false;
    for (const auto& m : row.request.messages) has_user = has_user || m.role == Role::kUser;
    if (has_user) rows.push_back(std::move(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rows;
}

absl::StatusOr<std::vector<LabeledRow>> ReadBfclIrrelevance(
    std::string_view contents, std::string_view category,
    const std::map<std::string, std::string>& labels) {
  std::vector<LabeledRow> rows;
  const std::string file = absl::StrCat("BFCL_v4_", std::string(category), ".json");
  absl::Status s = ForEachJsonLine(contents, file, [&](const json& v, size_t) {
    std::string text;
    try {
      const json& turns = v.at("question");
      if (!turns.is_array() || turns.empty()) return absl::OkStatus();
      for (const json& m : turns.at(0)) {
        if (GetString(m, "role") == "user") {
          text = GetString(m, "content");
          break;
        }
      }
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(e.what());
    }
    if (text.empty()) return absl::OkStatus();
    const std::string key = TextKey(text);
    auto it = labels.find(key);
    if (it == labels.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no label for key ", key, " (", text.substr(0, 40), ")"));
    }
    if (it->second == "skip") return absl::OkStatus();
    rows.push_back(TextRow(text, it->second, "bfcl_irrelevance", "Apache-2.0",
                           std::string(category)));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rows;
}

absl::StatusOr<std::vector<OutcomeRow>> ReadRouting(std::string_view contents,
                                                    std::string_view file_name) {
  std::vector<OutcomeRow> rows;
  absl::Status s = ForEachJsonLine(contents, file_name, [&](const json& v, size_t) {
    OutcomeRow row;
    try {
      row.request.id = v.at("id").get<std::string>();
      row.request.messages.push_back({Role::kUser, v.at("text").get<std::string>(), 0});
      row.source = v.at("source").get<std::string>();
      row.license = v.at("license").get<std::string>();
      row.group = GetString(v, "subset");
      row.needs_strong = v.at("needs_strong").get<int>();
      row.weak = v.at("weak_correct").get<double>();
      row.strong = v.at("strong_correct").get<double>();
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(e.what());
    }
    if (row.source == "mt_bench") {  // judge scores 1..10
      row.weak /= 10;
      row.strong /= 10;
    }
    if (row.needs_strong != 0 && row.needs_strong != 1) {
      return absl::InvalidArgumentError("`needs_strong` must be 0 or 1");
    }
    rows.push_back(std::move(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rows;
}

void DatasetBuilder::AddTraining(std::vector<LabeledRow> rows) {
  for (LabeledRow& row : rows) {
    std::string key = NormalizeForDedup(row.request.JoinedText());
    if (key.empty() || !train_keys_.insert(std::move(key)).second) {
      ++duplicates_;
      continue;
    }
    training_.push_back(std::move(row));
  }
}

void DatasetBuilder::AddEvaluation(std::vector<LabeledRow> rows) {
  for (LabeledRow& row : rows) {
    std::string key = NormalizeForDedup(row.request.JoinedText());
    if (key.empty()) continue;
    // Also catch an upstream prompt that training holds with extra input
    // appended (or the reverse): compare the shorter's prefix.
    bool overlap = train_keys_.count(key) > 0;
    if (!overlap && key.size() >= 40) {
      auto it = train_keys_.lower_bound(key.substr(0, 40));
      overlap = it != train_keys_.end() && it->compare(0, 40, key, 0, 40) == 0;
    }
    if (overlap) {
      ++overlaps_;
      continue;
    }
    if (!eval_keys_.insert(std::move(key)).second) {
      ++duplicates_;
      continue;
    }
    evaluation_.push_back(std::move(row));
  }
}

json LabeledRowJson(const LabeledRow& row) {
  json out = RequestToJson(row.request);
  out["label"] = row.label;
  out["source"] = row.source;
  out["license"] = row.license;
  if (!row.group.empty()) out["group"] = row.group;
  return out;
}

json OutcomeRowJson(const OutcomeRow& row) {
  json out = RequestToJson(row.request);
  out["needs_strong"] = row.needs_strong;
  out["weak"] = row.weak;
  out["strong"] = row.strong;
  out["source"] = row.source;
  out["license"] = row.license;
  if (!row.group.empty()) out["group"] = row.group;
  return out;
}

}  // namespace tiermesh::classifier
