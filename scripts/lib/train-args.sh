# Sourced by the scripts that run `bitfit train` with defaults of their own and pass the caller's
# arguments after them: bitfit train refuses a flag given twice, so a default is added only if the
# caller's arguments do not name its flag (long, short, or --flag=value).
#   train_args_given "$@"            record the flags the caller named
#   train_arg FLAG [VALUE...]        append FLAG VALUE... to the array `train` unless named
declare -A train_args_long=([-t]=--task-name [-o]=--output-path [-m]=--model-name [-f]=--fine-tune-type
  [-l]=--learning-rate [-e]=--epochs [-b]=--batch-size [-s]=--seed)
train_args_named=" "
train_args_given() {
  local a
  for a; do
    [[ $a == -* ]] || continue
    a=${a%%=*}
    [[ $a == -[!-]?* ]] && a=${a:0:2}  # -e3 is -e 3
    train_args_named+="${train_args_long[$a]:-$a} "
  done
}
train_arg() { [[ $train_args_named == *" $1 "* ]] || train+=("$@"); }
