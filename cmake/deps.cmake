# Every library wick builds against, with the minimum version it needs and
# the Debian package that provides it.  A missing or too-old one stops the
# configure step with a message that says what to install.
find_package(PkgConfig REQUIRED)

set(WICK_MISSING "")
function(wick_require prefix module minver debpkg)
	pkg_check_modules(${prefix} QUIET IMPORTED_TARGET "${module}>=${minver}")
	if(NOT ${prefix}_FOUND)
		pkg_check_modules(${prefix}_ANY QUIET "${module}")
		if(${prefix}_ANY_FOUND)
			set(have "version ${${prefix}_ANY_VERSION} is installed")
		else()
			set(have "not installed")
		endif()
		message(SEND_ERROR "wick needs ${module} >= ${minver} (${have}): "
			"apt-get install ${debpkg}, or run scripts/setup.sh")
	endif()
endfunction()

wick_require(UV libuv 1.44 libuv1-dev)
wick_require(SSL openssl 3.0 libssl-dev)
wick_require(NGHTTP2 libnghttp2 1.52 libnghttp2-dev)
wick_require(PROTOBUFC libprotobuf-c 1.4 libprotobuf-c-dev)
wick_require(SQLITE sqlite3 3.35 libsqlite3-dev)
wick_require(PQ libpq 13 libpq-dev)
wick_require(JANSSON jansson 2.13 libjansson-dev)
wick_require(CJOSE cjose 0.6 libcjose-dev)
wick_require(CURL libcurl 7.74 libcurl4-openssl-dev)
wick_require(TSS2ESYS tss2-esys 3.0 libtss2-dev)
wick_require(TSS2TCTILDR tss2-tctildr 3.0 libtss2-dev)
wick_require(TSS2MU tss2-mu 3.0 libtss2-dev)
wick_require(TSS2RC tss2-rc 3.0 libtss2-dev)
wick_require(TSS2SYS tss2-sys 3.0 libtss2-dev)
wick_require(CMOCKA cmocka 1.1 libcmocka-dev)

find_program(PROTOC_C protoc-c)
if(NOT PROTOC_C)
	message(SEND_ERROR "wick needs protoc-c: apt-get install protobuf-c-compiler, or run scripts/setup.sh")
endif()
find_path(PROTOBUF_INCLUDE google/protobuf/struct.proto PATHS /usr/include /usr/local/include)
if(NOT PROTOBUF_INCLUDE)
	message(SEND_ERROR "wick needs google/protobuf/struct.proto: apt-get install libprotobuf-dev protobuf-compiler, or run scripts/setup.sh")
endif()

# wick_protoc_c(<library> <proto> ...): generate protobuf-c sources at build
# time into the build tree and build them as a static library.
function(wick_protoc_c lib)
	set(srcs "")
	foreach(proto ${ARGN})
		get_filename_component(name ${proto} NAME_WE)
		get_filename_component(dir ${proto} DIRECTORY)
		set(out_c ${CMAKE_CURRENT_BINARY_DIR}/${name}.pb-c.c)
		set(out_h ${CMAKE_CURRENT_BINARY_DIR}/${name}.pb-c.h)
		add_custom_command(OUTPUT ${out_c} ${out_h}
			COMMAND ${PROTOC_C} -I${CMAKE_CURRENT_SOURCE_DIR}/${dir}
				-I${PROTOBUF_INCLUDE}
				--c_out=${CMAKE_CURRENT_BINARY_DIR} ${proto}
			DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${proto}
			WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
			COMMENT "protoc-c ${proto}")
		list(APPEND srcs ${out_c})
	endforeach()
	add_library(${lib} STATIC ${srcs})
	target_include_directories(${lib} PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
	target_link_libraries(${lib} PUBLIC PkgConfig::PROTOBUFC)
	# Generated code is not ours to keep warning-free.
	target_compile_options(${lib} PRIVATE -w)
endfunction()
