import { InMemoryCheckpointStore } from '../../../core/checkpoint/store.js';
import { checkpointStoreContract } from './store-contract.js';

checkpointStoreContract('InMemoryCheckpointStore', () => new InMemoryCheckpointStore());
