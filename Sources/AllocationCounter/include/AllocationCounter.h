int allocation_counter_dummy(void);
