int allocation_counter_dummy(void){return 0;}
