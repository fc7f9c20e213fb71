import { runApiSuite } from './api-suite';

runApiSuite('embedded store (sqlite)');
