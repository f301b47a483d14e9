module go_micro

go 1.19
