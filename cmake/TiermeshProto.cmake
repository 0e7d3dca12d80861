# tiermesh_proto_library(<target> PROTOS a.proto b.proto ... IMPORT_DIR dir):
# generates C++ protobuf + gRPC code into the build tree (never committed) and
# compiles it into one static library.
function(tiermesh_proto_library target)
  cmake_parse_arguments(ARG "" "IMPORT_DIR" "PROTOS" ${ARGN})
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/gen")
  file(MAKE_DIRECTORY "${out_dir}")
  get_target_property(grpc_plugin gRPC::grpc_cpp_plugin LOCATION)
  set(srcs)
  set(hdrs)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(abs "${proto}" ABSOLUTE)
    file(RELATIVE_PATH rel "${ARG_IMPORT_DIR}" "${abs}")
    string(REGEX REPLACE "\\.proto$" "" base "${rel}")
    set(gen
      "${out_dir}/${base}.pb.cc" "${out_dir}/${base}.pb.h"
      "${out_dir}/${base}.grpc.pb.cc" "${out_dir}/${base}.grpc.pb.h")
    add_custom_command(
      OUTPUT ${gen}
      COMMAND protobuf::protoc
        --proto_path=${ARG_IMPORT_DIR}
        --cpp_out=${out_dir}
        --grpc_out=${out_dir}
        --plugin=protoc-gen-grpc=${grpc_plugin}
        ${abs}
      DEPENDS ${abs} ${ARG_PROTOS} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    list(APPEND srcs "${out_dir}/${base}.pb.cc" "${out_dir}/${base}.grpc.pb.cc")
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} SYSTEM PUBLIC "${out_dir}")
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
