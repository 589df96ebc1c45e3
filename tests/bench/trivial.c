/* The exec floor every sw benchmark is measured against. */
int main(void) { return 0; }
