module go_park

go 1.19
