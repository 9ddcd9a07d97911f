# Doxygen input filter for include/mio.h, which is written with plain C
# comments: the first comment becomes the documentation of a group that
# holds the whole header (SHOW_FILES is off, so that the guide's .md files
# get no empty file pages: the header is reached as that group), each
# "---- Section ----" banner a named member group (its text the group's),
# a comment on a line of its own documents what follows, and a comment after
# code documents that code.  Line numbers are kept.

function close_group() {
    if (group_open) { printf "/** @} */ "; group_open = 0 }
}

{
    line = $0
    if (in_comment) {
        if (index(line, "*/")) {
            in_comment = 0
            if (banner) { sub(/\*\//, "*/ /** @{ */", line); banner = 0; group_open = 1 }
            if (first) { sub(/\*\//, "*/ /** @{ */", line); first = 0 }
        }
        print line
        next
    }
    if (line ~ /^#ifdef __cplusplus/ && group_open) {
        close_group()
        print line
        next
    }
    if (line ~ /^\/\* ----/) {                  # a section banner
        title = line
        sub(/^\/\* -+ */, "", title)
        sub(/ *-+ *(\*\/)? *$/, "", title)
        close_group()
        rest = line
        if (index(line, "*/")) {
            printf "/** @name %s */ /** @{ */\n", title
            group_open = 1
        } else {
            printf "/** @name %s\n", title
            in_comment = 1
            banner = 1
        }
        next
    }
    if (line ~ /^[ \t]*\/\*[^*]/ || line ~ /^[ \t]*\/\*$/) {   # a comment of its own
        if (!seen_first) { sub(/\/\*/, "/** @defgroup mio_h mio.h", line); seen_first = 1; first = 1 }
        else sub(/\/\*/, "/**", line)
        if (!index(line, "*/")) in_comment = 1
        print line
        next
    }
    if (line ~ /[^ \t].*\/\* / && line !~ /^[ \t]*\*/) {        # after code
        sub(/\/\* /, "/**< ", line)
        if (!index(substr(line, index(line, "/**<")), "*/")) in_comment = 1
    }
    print line
}

END { close_group(); print "/** @} */" }
